variable "name" {
  description = "Cluster name: prefix of resource names."
  type        = string
  default     = "meridian"
}

variable "regions" {
  description = <<-EOT
    The three Meridian regions: the AWS region, an existing VPC and its
    subnets by rack (availability zone) with their CIDR blocks; node i of
    the region goes to rack i mod the number of racks and gets the private
    address cidrhost(that subnet's cidr, 10 + i). The VPCs must reach each
    other (peering or a transit gateway).
  EOT
  type = map(object({
    aws_region = string
    vpc_id     = string
    subnets    = map(object({ id = string, cidr = string }))
    ami_id     = string
  }))
  validation {
    condition     = toset(keys(var.regions)) == toset(["east", "west", "central"])
    error_message = "This example wires exactly the regions east, west and central to provider aliases."
  }
}

variable "nodes_per_region" {
  description = "Nodes in each region; they are spread over the region's racks in turn."
  type        = number
  default     = 3
}

variable "gossip_key" {
  description = "Gossip encryption key (meridian config gossip-key)."
  type        = string
  sensitive   = true
}

variable "certs_dir" {
  description = "Local directory with ca.pem and every node's ID.pem and ID-key.pem, made beforehand with meridian cert (see README)."
  type        = string
}

variable "binary_url" {
  description = "URL the instances download the meridian binary from."
  type        = string
}

variable "instance_type" {
  description = "EC2 instance type of the nodes."
  type        = string
  default     = "m7g.large"
}

variable "client_cidrs" {
  description = "CIDR blocks of the clients (QUIC, UDP)."
  type        = list(string)
  default     = []
}
