output "instances" {
  description = "Instance id of each node of the region, by node id."
  value       = { for id, i in aws_instance.node : id => i.id }
}

output "security_group_id" {
  description = "The nodes' security group."
  value       = aws_security_group.node.id
}
