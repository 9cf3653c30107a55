package plan

import "github.com/envhooks/envhooks/lib/environment"

// Backend turns an environment into the ordered steps that attach its
// directories. Backends only describe; the engine runs.
type Backend interface {
	Steps(env *environment.Env, roles []environment.Role) ([]Step, error)
}
