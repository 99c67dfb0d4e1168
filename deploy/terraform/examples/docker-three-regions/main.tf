# Three regions of Meridian nodes as containers on this machine's Docker
# engine: the topology module computes every node's configuration; one
# docker-region module per region runs its nodes; a WAN network joins them.

locals {
  regions = { east = 1, west = 2, central = 3 }
  certs   = abspath("${path.root}/out/certs")
}

module "topology" {
  source = "../../modules/topology"

  regions = {
    for r, i in local.regions : r => {
      nodes  = var.nodes_per_region
      racks  = ["a", "b", "c"]
      subnet = cidrsubnet(var.wan_subnet, 8, i)
    }
  }
  keyspaces = {
    default = { replication = { for r, _ in local.regions : r => min(3, var.nodes_per_region) } }
  }
  gossip_key = var.gossip_key
  # Every node on one machine: LAN failure detection, emulated WAN latency.
  gossip_profile = "lan"
  wan_latency    = var.wan_latency
  client         = { dc = "east", name = "admin", certs_dir = local.certs }
}

# The CA, each node's certificate and the admin client's, made with
# meridian cert before any container starts. The CA and the client
# certificate are kept across applies; node certificates are reissued when
# the set of nodes changes.
resource "terraform_data" "certs" {
  triggers_replace = [for id, n in module.topology.nodes : "${id}=${n.address}"]

  provisioner "local-exec" {
    interpreter = ["bash", "-c"]
    environment = {
      BIN   = var.meridian_bin
      CERTS = local.certs
      NODES = join(" ", [for id, n in module.topology.nodes : "${id},${n.dc},${n.address}"])
    }
    command = <<-EOT
      set -euo pipefail
      mkdir -p "$CERTS"
      [ -f "$CERTS/ca.pem" ] || "$BIN" cert create-ca --certs-dir "$CERTS" --name "Meridian ${var.name} CA" >/dev/null
      [ -f "$CERTS/admin.pem" ] || "$BIN" cert create-client --certs-dir "$CERTS" --name admin >/dev/null
      for n in $NODES; do
        IFS=, read -r id dc addr <<<"$n"
        "$BIN" cert create-node --certs-dir "$CERTS" --id "$id" --dc "$dc" --host "$addr" --host "$id" --overwrite >/dev/null
      done
    EOT
  }
}

resource "docker_network" "wan" {
  name = "${var.name}-wan"
  ipam_config {
    subnet = var.wan_subnet
  }
}

module "region" {
  source   = "../../modules/docker-region"
  for_each = local.regions

  region       = each.key
  name_prefix  = var.name
  nodes        = module.topology.nodes
  node_configs = module.topology.node_configs
  certs_dir    = local.certs
  image        = var.image
  wan_network  = docker_network.wan.name
  publish_quic = var.publish_quic

  depends_on = [terraform_data.certs]
}
