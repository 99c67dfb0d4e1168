output "client_config" {
  description = "Client configuration for this host (Linux reaches container addresses directly): terraform output -raw client_config > out/client.yaml"
  value       = module.topology.client_config
}

output "nodes" {
  description = "Every node's region, rack and addresses."
  value       = module.topology.nodes
}

output "containers" {
  description = "Container names by node id."
  value       = merge([for r in module.region : r.containers]...)
}

output "published_quic" {
  description = "With publish_quic: each node's QUIC endpoint on 127.0.0.1."
  value       = merge([for r in module.region : r.published_quic]...)
}
