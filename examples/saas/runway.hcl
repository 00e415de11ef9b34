# A SaaS project with three services: development runs on this machine,
# staging and production on AWS. `runway netplan`, `runway dns` and
# `runway infra generate` read this file; see the README's "Going to AWS".
project "saas" {
  domain = "example.com"
}

environment "development" {
  target = "local"
}

environment "staging" {
  target = "aws"
  region = "us-east-2"
}

environment "production" {
  target    = "aws"
  region    = "us-east-2"
  protected = true
  # The account's ECR registry and the project (the service roots'
  # repository_url without the service): runway build and runway deploy
  # push there with ECR's credentials and pin the digest.
  registry = "210987654321.dkr.ecr.us-east-2.amazonaws.com/saas"
}

network {
  ip_space = "10.0.0.0/8"
  # The office VPN: never allocated.
  reserved = ["10.200.0.0/16"]
}

notify "ops" {
  webhook = "https://hooks.example.com/T000/B000"
}
