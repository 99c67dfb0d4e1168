output "containers" {
  description = "Container name of each node of the region, by node id."
  value       = { for id, c in docker_container.node : id => c.name }
}

output "network" {
  description = "Name of the region's own network."
  value       = docker_network.region.name
}

output "published_quic" {
  description = "With publish_quic: the host address of each node's QUIC endpoint, by node id."
  value = {
    for id, c in docker_container.node : id => "127.0.0.1:${one([for p in c.ports : p.external if p.protocol == "udp"])}" if var.publish_quic
  }
}
