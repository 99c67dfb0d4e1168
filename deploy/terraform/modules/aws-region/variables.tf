variable "region" {
  description = "The Meridian region (datacenter) this module runs: the topology's name for it, which need not be the AWS region's."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of resource names and the Name tag."
  type        = string
}

variable "nodes" {
  description = "The topology module's nodes output; this module takes those of var.region. Each node's address must lie in var.subnet_id's CIDR block: the instance gets it as its private IP."
  type = map(object({
    dc      = string
    rack    = string
    index   = number
    address = string
    quic    = string
    gossip  = string
    admin   = string
  }))
}

variable "node_configs" {
  description = "The topology module's node_configs output (YAML by node id). Use data_dir = \"/var/lib/meridian\" and certs_dir = \"/etc/meridian\" in the topology."
  type        = map(string)
  sensitive   = true
}

variable "tls" {
  description = "PEM certificates by node id (meridian cert): ca, cert and key. They travel in user data: restrict who may read instance attributes, or deliver keys through a secrets store instead."
  type = map(object({
    ca   = string
    cert = string
    key  = string
  }))
  sensitive = true
}

variable "vpc_id" {
  description = "VPC of the region's nodes."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets by rack name (availability zones): a node goes to its rack's subnet."
  type        = map(string)
}

variable "cluster_cidrs" {
  description = "CIDR blocks of every region's nodes (VPCs joined by peering or a transit gateway): allowed to reach QUIC and gossip."
  type        = list(string)
}

variable "client_cidrs" {
  description = "CIDR blocks of clients allowed to reach QUIC (UDP)."
  type        = list(string)
  default     = []
}

variable "admin_cidrs" {
  description = "CIDR blocks allowed to reach the admin endpoint (/metrics, /healthz)."
  type        = list(string)
  default     = []
}

variable "ports" {
  description = "The topology's ports."
  type = object({
    quic   = optional(number, 7000)
    gossip = optional(number, 7946)
    admin  = optional(number, 9090)
  })
  default = {}
}

variable "ami_id" {
  description = "AMI of a Linux with systemd and curl (e.g. Debian 12) in this AWS region."
  type        = string
}

variable "instance_type" {
  description = "EC2 instance type."
  type        = string
  default     = "m7g.large"
}

variable "binary_url" {
  description = "URL of the meridian binary for the instances' architecture (a static CGO_ENABLED=0 build)."
  type        = string
}

variable "data_volume_size" {
  description = "Size in GiB of each node's root volume, which holds /var/lib/meridian."
  type        = number
  default     = 100
}

variable "key_name" {
  description = "EC2 key pair for SSH, or null."
  type        = string
  default     = null
}
