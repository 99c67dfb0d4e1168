terraform {
  required_version = ">= 1.9"
  required_providers {
    docker = {
      # Built from the Go module proxy into a filesystem mirror by
      # deploy/terraform/provider-mirror.sh (no registry is needed).
      source  = "kreuzwerker/docker"
      version = ">= 3.0"
    }
  }
}
