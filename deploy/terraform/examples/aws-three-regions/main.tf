module "topology" {
  source = "../../modules/topology"

  regions = {
    for r, v in var.regions : r => {
      nodes        = var.nodes_per_region
      racks        = sort(keys(v.subnets))
      rack_subnets = { for rack, s in v.subnets : rack => s.cidr }
    }
  }
  keyspaces = {
    default = { replication = { for r, _ in var.regions : r => min(3, var.nodes_per_region) } }
  }
  repair_windows = [
    { pair = ["east", "west"], cron = "0 2 * * *", duration = "2h" },
    { pair = ["east", "central"], cron = "0 4 * * *", duration = "2h" },
    { pair = ["west", "central"], cron = "0 6 * * *", duration = "2h" },
    { pair = ["east", "east"] },
    { pair = ["west", "west"] },
    { pair = ["central", "central"] },
  ]
  gossip_key = var.gossip_key
  data_dir   = "/var/lib/meridian"
  certs_dir  = "/etc/meridian"
}

locals {
  tls = {
    for id, _ in module.topology.nodes : id => {
      ca   = file("${var.certs_dir}/ca.pem")
      cert = file("${var.certs_dir}/${id}.pem")
      key  = file("${var.certs_dir}/${id}-key.pem")
    }
  }
  cluster_cidrs = flatten([for r in values(var.regions) : [for s in values(r.subnets) : s.cidr]])
}

module "east" {
  source    = "../../modules/aws-region"
  providers = { aws = aws.east }

  region        = "east"
  name_prefix   = var.name
  nodes         = module.topology.nodes
  node_configs  = module.topology.node_configs
  tls           = local.tls
  vpc_id        = var.regions.east.vpc_id
  subnet_ids    = { for rack, s in var.regions.east.subnets : rack => s.id }
  ami_id        = var.regions.east.ami_id
  instance_type = var.instance_type
  binary_url    = var.binary_url
  cluster_cidrs = local.cluster_cidrs
  client_cidrs  = var.client_cidrs
}

module "west" {
  source    = "../../modules/aws-region"
  providers = { aws = aws.west }

  region        = "west"
  name_prefix   = var.name
  nodes         = module.topology.nodes
  node_configs  = module.topology.node_configs
  tls           = local.tls
  vpc_id        = var.regions.west.vpc_id
  subnet_ids    = { for rack, s in var.regions.west.subnets : rack => s.id }
  ami_id        = var.regions.west.ami_id
  instance_type = var.instance_type
  binary_url    = var.binary_url
  cluster_cidrs = local.cluster_cidrs
  client_cidrs  = var.client_cidrs
}

module "central" {
  source    = "../../modules/aws-region"
  providers = { aws = aws.central }

  region        = "central"
  name_prefix   = var.name
  nodes         = module.topology.nodes
  node_configs  = module.topology.node_configs
  tls           = local.tls
  vpc_id        = var.regions.central.vpc_id
  subnet_ids    = { for rack, s in var.regions.central.subnets : rack => s.id }
  ami_id        = var.regions.central.ami_id
  instance_type = var.instance_type
  binary_url    = var.binary_url
  cluster_cidrs = local.cluster_cidrs
  client_cidrs  = var.client_cidrs
}
