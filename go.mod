module github.com/envhooks/envhooks

go 1.26.8

require (
	github.com/gofrs/flock v0.13.1
	github.com/joho/godotenv v1.5.1
	github.com/moby/sys/mountinfo v0.7.3
	github.com/pborman/getopt/v2 v2.1.0
	github.com/stretchr/testify v1.12.1
	github.com/vmware/go-nfs-client v0.0.0-20190605212624-d43b92724c1b
	golang.org/x/sys v0.49.0
	golang.org/x/term v0.47.0
)

require (
	github.com/rasky/go-xdr v0.0.0-20170124162913-1a41d1a06c93 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
)
