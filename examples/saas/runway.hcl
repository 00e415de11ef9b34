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
}

network {
  ip_space = "10.0.0.0/8"
  # The office VPN: never allocated.
  reserved = ["10.200.0.0/16"]
}

notify "ops" {
  webhook = "https://hooks.example.com/T000/B000"
}
