# The web front end, released blue/green with a preview host.
service "web" {
  command = ["./bin/web", "--port", "{{PORT}}"]
  port    = 3000

  health {
    path = "/healthz"
  }

  deploy {
    strategy = "blue_green"
    blue_green {
      preview = true
    }
  }

  environment "staging" {
    command = []
    image   = "ghcr.io/example/saas-web:1.4.2"
  }

  environment "production" {
    command = []
    image   = "ghcr.io/example/saas-web:1.4.2"
    scale {
      min     = 3
      desired = 4
    }
  }
}
