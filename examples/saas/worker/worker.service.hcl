# Background jobs: no HTTP traffic of its own, checked over TCP.
service "worker" {
  command = ["./bin/worker", "--port", "{{PORT}}"]
  port    = 9090
  secrets = ["DATABASE_URL"]

  health {
    kind = "tcp"
  }

  environment "staging" {
    command = []
    image   = "ghcr.io/example/saas-worker:2.0.1"
  }

  environment "production" {
    command = []
    image   = "ghcr.io/example/saas-worker:2.0.1"
  }
}
