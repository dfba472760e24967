package main

import (
	"flag"
	"os"
)

// envDefaults fills every flag the user did not set from its TRUSTGATE_* variable: a flag wins over
// the environment, the environment over the default.
func envDefaults(fs *flag.FlagSet, env map[string]string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, variable := range env {
		if set[name] {
			continue
		}
		if v, ok := os.LookupEnv(variable); ok {
			if err := fs.Set(name, v); err != nil {
				return &envError{variable: variable, flag: name, err: err}
			}
		}
	}
	return nil
}

// envError names the variable and the flag whose values it takes, never the value (a DSN may hold
// a password).
type envError struct {
	variable, flag string
	err            error
}

func (e *envError) Error() string {
	return "environment variable " + e.variable + ": " + e.err.Error() + "; give it a value --" + e.flag + " accepts (trustgate serve -h)"
}
