# terraform test: runs offline (the module has no provider).

variables {
  regions = {
    east    = { nodes = 3, racks = ["a", "b", "c"], subnet = "10.1.0.0/24" }
    west    = { nodes = 2, racks = ["a"], subnet = "10.2.0.0/24", host_offset = 100 }
    central = { nodes = 1, subnet = "10.3.0.0/24" }
  }
  keyspaces = {
    default = { replication = { east = 3, west = 2, central = 1 } }
    local   = { replication = { east = 1 }, write_consistency = "ONE", read_consistency = "ONE" }
  }
  repair_windows = [
    { pair = ["east", "west"], cron = "0 2 * * *", duration = "2h" },
    { pair = ["east", "east"] },
  ]
  gossip_key  = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
  wan_latency = "40ms"
}

run "nodes_addresses_and_racks" {
  command = plan

  assert {
    condition     = length(output.nodes) == 6
    error_message = "3 + 2 + 1 nodes"
  }
  assert {
    condition     = output.nodes["east-3"].address == "10.1.0.13" && output.nodes["west-2"].address == "10.2.0.102"
    error_message = "node i of a region is cidrhost(subnet, host_offset + i)"
  }
  assert {
    condition     = output.nodes["east-2"].rack == "b" && output.nodes["west-2"].rack == "a" && output.nodes["central-1"].rack == "rack1"
    error_message = "racks are dealt out in turn"
  }
  assert {
    condition     = output.seeds == ["10.3.0.11:7946", "10.1.0.11:7946", "10.2.0.101:7946"]
    error_message = "one seed per region, regions by name"
  }
}

run "node_configuration" {
  command = plan

  assert {
    condition     = yamldecode(output.node_configs["west-1"]).advertise == "10.2.0.101:7000" && yamldecode(output.node_configs["west-1"]).gossip == "10.2.0.101:7946"
    error_message = "a node advertises its own address"
  }
  assert {
    condition     = yamldecode(output.node_configs["west-1"]).tls.key == "/etc/meridian/west-1-key.pem"
    error_message = "the node's key is ID-key.pem in certs_dir"
  }
  assert {
    condition     = yamldecode(output.node_configs["east-1"]).keyspaces.default.replication.west == 2 && yamldecode(output.node_configs["east-1"]).keyspaces.local.write_consistency == "ONE"
    error_message = "keyspaces carry their replication and consistency"
  }
  assert {
    condition     = length(yamldecode(output.node_configs["east-1"]).repair.windows) == 2 && yamldecode(output.node_configs["east-1"]).repair.windows[0].cron == "0 2 * * *"
    error_message = "repair windows are written"
  }
  assert {
    condition     = yamldecode(output.node_configs["east-1"]).wan_emulation.peers["10.3.0.11:7000"] == "central" && length(yamldecode(output.node_configs["east-1"]).wan_emulation.peers) == 6
    error_message = "every node's QUIC address is a WAN emulation peer"
  }
  assert {
    condition     = yamldecode(output.node_configs["east-1"]).auth.superusers == ["admin"] && yamldecode(output.client_config).tls.cert == "certs/admin.pem"
    error_message = "admin is the superuser, and the client's principal by default"
  }
}

run "client_configuration" {
  command = plan

  variables {
    client = { dc = "west", name = "alice", certs_dir = "/home/alice/certs" }
  }
  assert {
    condition     = yamldecode(output.client_config).dc == "west" && length(yamldecode(output.client_config).nodes) == 6 && yamldecode(output.client_config).tls.cert == "/home/alice/certs/alice.pem"
    error_message = "the client configuration names every node and the client's certificate"
  }
}

run "no_emulation_no_windows" {
  command = plan

  variables {
    wan_latency    = null
    repair_windows = []
  }
  assert {
    condition     = !can(yamldecode(output.node_configs["east-1"]).wan_emulation) && !can(yamldecode(output.node_configs["east-1"]).repair)
    error_message = "real regions get no emulation; no windows leave repair to its defaults"
  }
}

run "rack_subnets" {
  command = plan

  variables {
    regions = {
      east = { nodes = 4, racks = ["a", "b"], rack_subnets = { a = "10.1.1.0/24", b = "10.1.2.0/24" } }
    }
    keyspaces   = { default = { replication = { east = 3 } } }
    wan_latency = null
  }
  assert {
    condition     = output.nodes["east-1"].address == "10.1.1.11" && output.nodes["east-2"].address == "10.1.2.12" && output.nodes["east-3"].address == "10.1.1.13"
    error_message = "with rack_subnets a node's address is in its rack's subnet"
  }
}

run "local_consistency_without_replicas_refused" {
  command = plan

  variables {
    keyspaces = { default = { replication = { east = 3 } } }
  }
  expect_failures = [var.keyspaces]
}

run "bad_profile_refused" {
  command = plan

  variables {
    gossip_profile = "fast"
  }
  expect_failures = [var.gossip_profile]
}

run "bad_region_name_refused" {
  command = plan

  variables {
    regions = { "US East" = { nodes = 1, subnet = "10.1.0.0/24" } }
  }
  expect_failures = [var.regions]
}

run "replication_in_unknown_region_refused" {
  command = plan

  variables {
    keyspaces = { default = { replication = { north = 3 } } }
  }
  expect_failures = [var.keyspaces]
}
