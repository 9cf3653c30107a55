package quick

const defaultDir = "/var/run/envhooks"
