output "nodes" {
  description = "Every node's region, rack and private addresses."
  value       = module.topology.nodes
}

output "client_config" {
  description = "Client configuration naming every node (certificates in ./certs; edit dc to the client's region)."
  value       = module.topology.client_config
}

output "instances" {
  description = "EC2 instance ids by node id."
  value       = merge(module.east.instances, module.west.instances, module.central.instances)
}
