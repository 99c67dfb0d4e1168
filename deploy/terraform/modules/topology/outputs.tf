output "nodes" {
  description = "Every node by id: region (dc), rack, address, and its QUIC, gossip and admin ports."
  value = {
    for n in local.node_list : n.id => {
      dc      = n.dc
      rack    = n.rack
      index   = n.index
      address = n.address
      quic    = "${n.address}:${var.ports.quic}"
      gossip  = "${n.address}:${var.ports.gossip}"
      admin   = "${n.address}:${var.ports.admin}"
    }
  }
}

output "node_configs" {
  description = "Every node's configuration file (YAML for meridian node --config), by node id. Holds the gossip key."
  value       = { for id, c in local.node_configs : id => "# Meridian node ${id}, written by the topology Terraform module.\n${yamlencode(c)}" }
  sensitive   = true
}

output "seeds" {
  description = "Gossip addresses every node joins through."
  value       = local.seeds
}

output "regions" {
  description = "Region names, sorted."
  value       = local.region_names
}

output "client_config" {
  description = "A client configuration (YAML for meridian --config and client.LoadConfig) naming every node at its advertised address."
  value = "# Meridian client configuration, written by the topology Terraform module.\n${yamlencode({
    dc       = local.client_dc
    keyspace = "default"
    nodes    = [for n in local.node_list : { id = n.id, dc = n.dc, addr = "${n.address}:${var.ports.quic}" }]
    tls = {
      ca   = "${var.client.certs_dir}/ca.pem"
      cert = "${var.client.certs_dir}/${local.client_name}.pem"
      key  = "${var.client.certs_dir}/${local.client_name}-key.pem"
    }
  })}"
}
