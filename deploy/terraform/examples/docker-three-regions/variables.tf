variable "name" {
  description = "Cluster name: prefix of every container, network and volume."
  type        = string
  default     = "meridian-tf"
}

variable "wan_subnet" {
  description = "Subnet of the WAN network (a /16); region r's nodes get addresses in its r-th /24 (east 1, west 2, central 3)."
  type        = string
  default     = "10.214.0.0/16"
}

variable "nodes_per_region" {
  description = "Nodes in each of the three regions."
  type        = number
  default     = 3
}

variable "wan_latency" {
  description = "Emulated one-way latency between regions (in-process; Docker's kernel may lack netem)."
  type        = string
  default     = "40ms"
}

variable "gossip_key" {
  description = "Gossip encryption key: `meridian config gossip-key` (try-docker.sh makes one in out/gossip.key)."
  type        = string
  sensitive   = true
}

variable "meridian_bin" {
  description = "The meridian binary on this machine, which writes the certificates (meridian cert) before the containers start."
  type        = string
}

variable "image" {
  description = "The node image (deploy/docker/build.sh)."
  type        = string
  default     = "meridian:local"
}

variable "publish_quic" {
  description = "Also publish each node's QUIC port on 127.0.0.1 (see the published_quic output)."
  type        = bool
  default     = false
}
