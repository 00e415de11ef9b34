# runway.lock.hcl: address allocations recorded by Runway (runway netplan,
# runway infra generate). Commit this file: a range recorded here never moves.
# Removing a block releases its ranges for the next allocation.

region "production/us-east-2" {
  cidr = "10.1.0.0/16"

  zone "us-east-2a" {
    cidr    = "10.1.0.0/18"
    public  = "10.1.0.0/20"
    private = "10.1.16.0/20"
    data    = "10.1.32.0/20"
    spare   = "10.1.48.0/20"
  }

  zone "us-east-2b" {
    cidr    = "10.1.64.0/18"
    public  = "10.1.64.0/20"
    private = "10.1.80.0/20"
    data    = "10.1.96.0/20"
    spare   = "10.1.112.0/20"
  }

  zone "us-east-2c" {
    cidr    = "10.1.128.0/18"
    public  = "10.1.128.0/20"
    private = "10.1.144.0/20"
    data    = "10.1.160.0/20"
    spare   = "10.1.176.0/20"
  }
}

region "staging/us-east-2" {
  cidr = "10.0.0.0/16"

  zone "us-east-2a" {
    cidr    = "10.0.0.0/18"
    public  = "10.0.0.0/20"
    private = "10.0.16.0/20"
    data    = "10.0.32.0/20"
    spare   = "10.0.48.0/20"
  }

  zone "us-east-2b" {
    cidr    = "10.0.64.0/18"
    public  = "10.0.64.0/20"
    private = "10.0.80.0/20"
    data    = "10.0.96.0/20"
    spare   = "10.0.112.0/20"
  }

  zone "us-east-2c" {
    cidr    = "10.0.128.0/18"
    public  = "10.0.128.0/20"
    private = "10.0.144.0/20"
    data    = "10.0.160.0/20"
    spare   = "10.0.176.0/20"
  }
}
