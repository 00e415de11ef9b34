# The example project used by Runway's README, demo and tests.
project "hello" {}

environment "development" { target = "local" }
environment "staging" { target = "local" }
environment "production" {
  target    = "local"
  protected = true
}
