terraform {
  required_version = ">= 1.9"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

# One provider per AWS region; each Meridian region's module gets its own.
provider "aws" {
  alias  = "east"
  region = var.regions.east.aws_region
}

provider "aws" {
  alias  = "west"
  region = var.regions.west.aws_region
}

provider "aws" {
  alias  = "central"
  region = var.regions.central.aws_region
}
