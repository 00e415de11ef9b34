terraform {
  backend "s3" {
    bucket       = "state"
    key          = "app/terraform.tfstate"
    region       = "us-east-2"
    use_lockfile = true
  }
}
