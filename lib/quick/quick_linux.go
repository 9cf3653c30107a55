package quick

const defaultDir = "/run/envhooks"
