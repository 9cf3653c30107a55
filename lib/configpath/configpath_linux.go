package configpath

// Global is the global configuration file on Linux.
const Global = "/etc/envhooks.conf"
