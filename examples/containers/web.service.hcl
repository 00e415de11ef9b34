# The web service: examples/hello in an image FROM scratch. Its Dockerfile
# copies the static binary from bin/ (build it with
# `CGO_ENABLED=0 go build -o examples/containers/bin/hello ./examples/hello`;
# `make demo-containers` does).
service "web" {
  port    = 8080 # the port inside the container; the agent publishes it on 127.0.0.1
  version = "1.0.0"
  env     = { GREETING = "there" }

  build {
    context    = "."
    dockerfile = "Dockerfile"
  }

  health {
    path     = "/healthz"
    interval = "1s"
    timeout  = "1s"
  }

  scale {
    min     = 2
    desired = 2
    max     = 6
  }

  deploy {
    strategy         = "rolling"
    scale_down_delay = "2s"
    rolling {
      max_surge       = 1
      max_unavailable = 0
    }
  }

  hooks {
    pre_deploy   = ["/hello", "migrate"] # runs once per release, in a container of the new image
    stop_timeout = "10s"
  }
}
