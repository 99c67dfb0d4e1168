locals {
  region_names = sort(keys(var.regions))

  # Every node, in region order then index order.
  node_list = flatten([
    for r in local.region_names : [
      for i in range(1, var.regions[r].nodes + 1) : {
        id    = "${r}-${i}"
        dc    = r
        index = i
        rack  = var.regions[r].racks[(i - 1) % length(var.regions[r].racks)]
        address = cidrhost(
          var.regions[r].rack_subnets == null ? var.regions[r].subnet : var.regions[r].rack_subnets[var.regions[r].racks[(i - 1) % length(var.regions[r].racks)]],
          var.regions[r].host_offset + i,
        )
      }
    ]
  ])

  seeds = flatten([
    for r in local.region_names : [
      for n in local.node_list : "${n.address}:${var.ports.gossip}" if n.dc == r && n.index <= var.seeds_per_region
    ]
  ])

  keyspaces = {
    for name, ks in var.keyspaces : name => {
      replication       = ks.replication
      write_consistency = ks.write_consistency
      read_consistency  = ks.read_consistency
    }
  }

  repair = length(var.repair_windows) == 0 ? {} : {
    repair = {
      windows = [for w in var.repair_windows : merge(
        { pair = w.pair },
        w.cron == null ? {} : { cron = w.cron },
        w.duration == null ? {} : { duration = w.duration },
        w.bytes_per_second == null ? {} : { bytes_per_second = w.bytes_per_second },
      )]
    }
  }

  wan_emulation = var.wan_latency == null ? {} : {
    wan_emulation = {
      latency = var.wan_latency
      peers   = { for n in local.node_list : "${n.address}:${var.ports.quic}" => n.dc }
    }
  }

  # The fields of meridian node's configuration (node/config.go), as
  # meridian config node writes them.
  node_configs = {
    for n in local.node_list : n.id => merge({
      id             = n.id
      dc             = n.dc
      rack           = n.rack
      listen         = "${var.listen_host}:${var.ports.quic}"
      advertise      = "${n.address}:${var.ports.quic}"
      admin          = "${var.listen_host}:${var.ports.admin}"
      gossip         = "${n.address}:${var.ports.gossip}"
      seeds          = local.seeds
      gossip_keys    = [var.gossip_key]
      gossip_profile = var.gossip_profile
      data_dir       = var.data_dir
      tls = {
        ca   = "${var.certs_dir}/ca.pem"
        cert = "${var.certs_dir}/${n.id}.pem"
        key  = "${var.certs_dir}/${n.id}-key.pem"
      }
      keyspaces = local.keyspaces
      },
      length(var.superusers) == 0 ? {} : { auth = { superusers = var.superusers } },
      var.audit_log == null ? {} : { audit = { path = var.audit_log } },
    local.repair, local.wan_emulation)
  }

  client_dc   = coalesce(var.client.dc, local.region_names[0])
  client_name = coalesce(var.client.name, try(var.superusers[0], null), "admin")
}
