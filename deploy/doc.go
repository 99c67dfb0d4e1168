// Package deploy holds deployment material for Meridian — the FROM-scratch
// container image, compose files, Terraform modules, systemd unit and
// failover drill scripts — and the Go tests that check it. It contains no
// code the binary links.
package deploy
