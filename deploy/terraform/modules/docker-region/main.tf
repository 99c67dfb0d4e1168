locals {
  nodes = { for id, n in var.nodes : id => n if n.dc == var.region }
}

# The region's own network: for the region's clients and services. Nodes
# reach each other, in this region and others, at their WAN addresses.
resource "docker_network" "region" {
  name = "${var.name_prefix}-${var.region}"
}

resource "docker_volume" "data" {
  for_each = local.nodes
  name     = "${var.name_prefix}-${each.key}-data"
}

resource "docker_container" "node" {
  for_each = local.nodes

  name     = "${var.name_prefix}-${each.key}"
  hostname = each.key
  image    = var.image
  command  = ["node", "--config", "${var.config_dir}/node.yaml"]
  restart  = "unless-stopped"

  # meridian drill --driver docker finds a region's containers by these
  # labels, as it does deploy/compose's.
  labels {
    label = "meridian.cluster"
    value = var.name_prefix
  }
  labels {
    label = "meridian.dc"
    value = var.region
  }
  labels {
    label = "meridian.node"
    value = each.key
  }

  # The image's HEALTHCHECK runs meridian health against the admin port.
  wait         = true
  wait_timeout = var.healthy_timeout

  networks_advanced {
    name = docker_network.region.name
  }
  networks_advanced {
    name         = var.wan_network
    ipv4_address = each.value.address
  }

  volumes {
    volume_name    = docker_volume.data[each.key].name
    container_path = "/data"
  }

  dynamic "ports" {
    for_each = var.publish_quic ? [7000] : []
    content {
      internal = tonumber(split(":", each.value.quic)[1])
      protocol = "udp"
      ip       = "127.0.0.1"
    }
  }

  # Uploaded files belong to root; the node (UID 10001) reads them. Docker
  # cannot give them the node's owner: it would look the image's numeric
  # user up in a passwd file, which a scratch image has none of.
  upload {
    file        = "${var.config_dir}/node.yaml"
    content     = var.node_configs[each.key]
    permissions = "0644"
  }
  upload {
    file        = "${var.config_dir}/ca.pem"
    source      = "${var.certs_dir}/ca.pem"
    permissions = "0644"
  }
  upload {
    file        = "${var.config_dir}/${each.key}.pem"
    source      = "${var.certs_dir}/${each.key}.pem"
    permissions = "0644"
  }
  upload {
    file        = "${var.config_dir}/${each.key}-key.pem"
    source      = "${var.certs_dir}/${each.key}-key.pem"
    permissions = "0644"
  }
}
