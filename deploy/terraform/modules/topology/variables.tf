variable "regions" {
  description = <<-EOT
    The cluster's regions (datacenters), by name. For each: how many nodes,
    the racks (availability zones) they are spread over in turn, and the
    subnet their addresses come from: node i (1-based) of the region gets
    cidrhost(subnet, host_offset + i), or, with rack_subnets (a subnet per
    rack, as clouds have per availability zone),
    cidrhost(rack_subnets[its rack], host_offset + i).
  EOT
  type = map(object({
    nodes        = number
    racks        = optional(list(string), ["rack1"])
    subnet       = optional(string)
    rack_subnets = optional(map(string))
    host_offset  = optional(number, 10)
  }))
  validation {
    condition     = alltrue([for r in values(var.regions) : (r.subnet == null) != (r.rack_subnets == null) && (r.rack_subnets == null || alltrue([for k in r.racks : contains(keys(coalesce(r.rack_subnets, {})), k)]))])
    error_message = "Give each region either subnet or rack_subnets (with a subnet for every rack)."
  }
  validation {
    condition     = length(var.regions) > 0 && alltrue([for r in values(var.regions) : r.nodes >= 1 && length(r.racks) >= 1])
    error_message = "Give at least one region, each with at least one node and one rack."
  }
  validation {
    condition     = alltrue([for name in keys(var.regions) : can(regex("^[a-z0-9][a-z0-9-]*$", name))])
    error_message = "Region names must be lower-case letters, digits and dashes (they name nodes: REGION-1, ...)."
  }
}

variable "keyspaces" {
  description = <<-EOT
    Keyspaces by name: replicas per region (a region absent or 0 keeps no
    copy), and optionally the default write and read consistency
    (default LOCAL_QUORUM).
  EOT
  type = map(object({
    replication       = map(number)
    write_consistency = optional(string, "LOCAL_QUORUM")
    read_consistency  = optional(string, "LOCAL_QUORUM")
  }))
  default = {}
  validation {
    condition = alltrue(flatten([
      for ks in values(var.keyspaces) : [for r, n in ks.replication : contains(keys(var.regions), r) && n <= try(var.regions[r].nodes, 0)]
    ]))
    error_message = "Every keyspace's replication must name regions of var.regions, with no more replicas than the region has nodes."
  }
  validation {
    condition = alltrue([
      for ks in values(var.keyspaces) : alltrue([for r in keys(var.regions) : lookup(ks.replication, r, 0) > 0])
      if startswith(ks.write_consistency, "LOCAL_") || startswith(ks.read_consistency, "LOCAL_")
    ])
    error_message = "A keyspace with a LOCAL_ consistency (the default) needs replicas in every region, since every region's nodes coordinate; give it QUORUM, EACH_QUORUM or ONE otherwise."
  }
}

variable "repair_windows" {
  description = <<-EOT
    Scheduled anti-entropy repair between two regions (or inside one: the
    same name twice): a five-field UTC cron expression (null: always open),
    how long the window stays open (a Go duration such as "2h") and the
    WAN budget in bytes per second per destination region (null: 24 MiB/s).
    No windows: low-rate background repair runs (the node's default).
  EOT
  type = list(object({
    pair             = list(string)
    cron             = optional(string)
    duration         = optional(string)
    bytes_per_second = optional(number)
  }))
  default = []
  validation {
    condition     = alltrue([for w in var.repair_windows : length(w.pair) == 2])
    error_message = "Each repair window's pair names two regions."
  }
}

variable "gossip_key" {
  description = "Base64 key (16, 24 or 32 bytes) encrypting gossip; make one with `meridian config gossip-key`."
  type        = string
  sensitive   = true
}

variable "ports" {
  description = "Ports of every node: QUIC (UDP, nodes and clients), gossip (TCP and UDP), admin HTTP (/healthz, /metrics)."
  type = object({
    quic   = optional(number, 7000)
    gossip = optional(number, 7946)
    admin  = optional(number, 9090)
  })
  default = {}
}

variable "listen_host" {
  description = "Address the QUIC and admin endpoints bind (gossip binds the node's own address, which it also advertises)."
  type        = string
  default     = "0.0.0.0"
}

variable "data_dir" {
  description = "The node's data directory, as the node sees it."
  type        = string
  default     = "/data"
}

variable "certs_dir" {
  description = "Directory holding ca.pem, ID.pem and ID-key.pem (meridian cert), as the node sees it."
  type        = string
  default     = "/etc/meridian"
}

variable "gossip_profile" {
  description = "Failure detection: wan (for real regions), lan or local (several nodes on one machine)."
  type        = string
  default     = "wan"
  validation {
    condition     = contains(["wan", "lan", "local"], var.gossip_profile)
    error_message = "gossip_profile must be wan, lan or local."
  }
}

variable "seeds_per_region" {
  description = "How many nodes of each region (the first ones) every node joins through."
  type        = number
  default     = 1
}

variable "wan_latency" {
  description = "If set (a Go duration such as \"40ms\"), every node delays its packets to nodes of other regions by it, in-process: for test clusters on one machine. Null for real regions."
  type        = string
  default     = null
}

variable "superusers" {
  description = "Principals (client certificate names) with admin on every keyspace whatever the grant table says (auth.superusers): the bootstrap administrators. The client configuration uses the first by default."
  type        = list(string)
  default     = ["admin"]
}

variable "audit_log" {
  description = "The nodes' audit log file; null: audit.log in data_dir."
  type        = string
  default     = null
}

variable "client" {
  description = "The client configuration's own region (default: the first region by name), principal (its certificate's name) and certificates directory as the client sees it."
  type = object({
    dc        = optional(string)
    name      = optional(string)
    certs_dir = optional(string, "certs")
  })
  default = {}
}
