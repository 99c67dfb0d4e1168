# One region's Meridian nodes as EC2 instances. Call it once per region
# with that region's aws provider alias (see examples/aws-three-regions).

locals {
  nodes = { for id, n in var.nodes : id => n if n.dc == var.region }
}

resource "aws_security_group" "node" {
  name_prefix = "${var.name_prefix}-${var.region}-"
  description = "Meridian nodes of ${var.region}"
  vpc_id      = var.vpc_id

  tags = { Name = "${var.name_prefix}-${var.region}" }
}

# QUIC between nodes (and from clients): UDP.
resource "aws_vpc_security_group_ingress_rule" "quic" {
  for_each          = toset(concat(var.cluster_cidrs, var.client_cidrs))
  security_group_id = aws_security_group.node.id
  description       = "Meridian QUIC"
  ip_protocol       = "udp"
  from_port         = var.ports.quic
  to_port           = var.ports.quic
  cidr_ipv4         = each.value
}

# Gossip (serf/memberlist): TCP and UDP, between nodes only.
resource "aws_vpc_security_group_ingress_rule" "gossip" {
  for_each          = { for p in setproduct(var.cluster_cidrs, ["tcp", "udp"]) : "${p[0]}/${p[1]}" => p }
  security_group_id = aws_security_group.node.id
  description       = "Meridian gossip"
  ip_protocol       = each.value[1]
  from_port         = var.ports.gossip
  to_port           = var.ports.gossip
  cidr_ipv4         = each.value[0]
}

resource "aws_vpc_security_group_ingress_rule" "admin" {
  for_each          = toset(var.admin_cidrs)
  security_group_id = aws_security_group.node.id
  description       = "Meridian admin (metrics, health)"
  ip_protocol       = "tcp"
  from_port         = var.ports.admin
  to_port           = var.ports.admin
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "all" {
  security_group_id = aws_security_group.node.id
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_instance" "node" {
  for_each = local.nodes

  ami                    = var.ami_id
  instance_type          = var.instance_type
  subnet_id              = var.subnet_ids[each.value.rack]
  private_ip             = each.value.address
  vpc_security_group_ids = [aws_security_group.node.id]
  key_name               = var.key_name

  user_data_replace_on_change = true
  user_data = templatefile("${path.module}/templates/user-data.sh.tftpl", {
    id         = each.key
    binary_url = var.binary_url
    config     = var.node_configs[each.key]
    ca         = var.tls[each.key].ca
    cert       = var.tls[each.key].cert
    key        = var.tls[each.key].key
    unit       = file("${path.module}/templates/meridian.service")
  })

  metadata_options {
    http_tokens = "required"
  }

  root_block_device {
    volume_size = var.data_volume_size
    volume_type = "gp3"
    encrypted   = true
  }

  tags = {
    Name            = "${var.name_prefix}-${each.key}"
    "meridian:dc"   = each.value.dc
    "meridian:rack" = each.value.rack
  }
}
