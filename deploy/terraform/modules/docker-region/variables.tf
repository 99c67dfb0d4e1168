variable "region" {
  description = "The region (datacenter) whose nodes this module runs."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of every container, network and volume name (e.g. the cluster's name), so that clusters on one engine do not collide."
  type        = string
}

variable "nodes" {
  description = "The topology module's nodes output (every region's; this module takes those of var.region)."
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
  description = "The topology module's node_configs output: each node's YAML configuration, by node id."
  type        = map(string)
  sensitive   = true
}

variable "certs_dir" {
  description = "Host directory holding ca.pem, ID.pem and ID-key.pem of every node of the region (meridian cert). Each container receives only its own."
  type        = string
}

variable "image" {
  description = "The Meridian image (deploy/docker/build.sh builds meridian:local)."
  type        = string
  default     = "meridian:local"
}

variable "wan_network" {
  description = "Name of the Docker network that joins the regions; every node gets its topology address on it."
  type        = string
}

variable "config_dir" {
  description = "Directory in the container that holds node.yaml and the certificates (the topology module's certs_dir)."
  type        = string
  default     = "/etc/meridian"
}

variable "publish_quic" {
  description = "Publish each node's QUIC port on 127.0.0.1 (a port Docker picks; see the published_quic output), for clients on hosts that cannot reach container addresses (Docker Desktop). Docker picks another port when a container is stopped and started again: run terraform apply to see it."
  type        = bool
  default     = false
}

variable "healthy_timeout" {
  description = "Seconds to wait for each container's health check (meridian health) to pass."
  type        = number
  default     = 90
}
