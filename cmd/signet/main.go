package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go-micro.dev/v4/registry"
)

// Exit statuses.
const (
	exitOK      = 0
	exitInvalid = 1 // a token or a registry node failed verification
	exitError   = 2 // a usage error or any other failure
)

const usage = `signet creates the keys and identity tokens of signet-signed go-micro
services, and audits and cleans the registry they use.

Usage:
    signet keygen -o FILE [-pub FILE]
    signet issue -key FILE (-node-pub FILE | -node-key FILE) -sub NAME
                 -services LIST [-topics LIST] [-aud LIST] [-iss NAME]
                 [-lifetime DURATION] [-kid ID] [-o FILE [-force]]
    signet inspect -bundle FILE [-aud LIST] [-iss NAME] [-alg LIST]
                   [-revocations FILE] [-json] TOKEN_FILE | -
    signet bundle [-o FILE [-force]] [-kid LIST] KEY_FILE...
    signet audit [-json] [-service LIST]
    signet purge [-yes [-force]] [-service LIST]
    signet help [COMMAND]

Commands:
    keygen   generate an Ed25519 key pair (PEM PKCS#8 private key, mode 0600)
    issue    sign an identity token that binds a node key to service names
    inspect  decode and verify an identity token against a trust bundle
    bundle   build a JWK Set trust bundle from issuer public keys
    audit    verify every node in the live registry and list the failures
    purge    remove the registry nodes that fail verification (dry run
             unless -yes is given)

Run "signet help COMMAND" for the details and flags of one command. Flags
take one dash or two (-json or --json), and a LIST is comma-separated.

Examples:
    # The issuer key pair. Keep issuer.key offline; publish issuer.pub.
    $ signet keygen -o issuer.key -pub issuer.pub
    $ signet bundle -o bundle.jwks issuer.pub

    # A node key and a token that lets it register greeter and greeter.*.
    $ signet keygen -o greeter.key -pub greeter.pub
    $ signet issue -key issuer.key -node-pub greeter.pub -sub greeter \
          -services 'greeter,greeter.*' -lifetime 720h -o greeter.jwt
    $ signet inspect -bundle bundle.jwks greeter.jwt

    # The service reads the same files.
    $ export MICRO_REGISTRY_TRUST_BUNDLE_FILE=bundle.jwks
    $ export MICRO_REGISTRY_SIGNING_KEY_FILE=greeter.key
    $ export MICRO_REGISTRY_IDENTITY_TOKEN_FILE=greeter.jwt

    # Audit a live registry with the services' settings, then remove
    # the nodes that fail verification.
    $ export MICRO_REGISTRY=etcd MICRO_REGISTRY_ADDRESS=127.0.0.1:2379
    $ signet audit
    $ signet purge         # dry run: lists what it would remove
    $ signet purge -yes

Exit status: 0 on success, 1 when a token or a registry node fails
verification, 2 on a usage error or any other failure.
`

// command is one run of the program with its environment, so that tests
// can run commands in-process against their own registry and clock.
type command struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer

	// lookupEnv reads environment variables, as os.LookupEnv does.
	lookupEnv func(string) (string, bool)

	// openRegistry returns the inner go-micro registry that audit and
	// purge inspect; nil means the registry that the MICRO_REGISTRY
	// variables in lookupEnv describe.
	openRegistry func() (registry.Registry, error)

	// now is the clock of issue and inspect.
	now func() time.Time

	// removalTimeout bounds how long purge waits for a deregistered node
	// to disappear from lookups; 0 means defaultRemovalTimeout.
	removalTimeout time.Duration
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line args and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	c := &command{
		stdin:     os.Stdin,
		stdout:    stdout,
		stderr:    stderr,
		lookupEnv: os.LookupEnv,
		now:       time.Now,
	}
	return c.run(args)
}

var subcommands = map[string]func(*command, []string) int{
	"keygen":  (*command).keygen,
	"issue":   (*command).issue,
	"inspect": (*command).inspect,
	"bundle":  (*command).bundle,
	"audit":   (*command).audit,
	"purge":   (*command).purge,
}

func (c *command) run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, usage)
		return exitError
	}

	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(rest) == 0 {
			fmt.Fprint(c.stdout, usage)
			return exitOK
		}
		if _, ok := subcommands[rest[0]]; ok {
			return subcommands[rest[0]](c, []string{"-h"})
		}
		name = rest[0]
	}

	sub, ok := subcommands[name]
	if !ok {
		fmt.Fprintf(c.stderr, "signet: unknown command %s; run \"signet help\" for the list of commands\n", printable(name))
		return exitError
	}
	return sub(c, rest)
}

// flags returns a flag set for subcommand name that writes its usage
// (synopsis, then the flag defaults) to stderr.
func (c *command) flags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("signet "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "Usage:\n%s\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args with fs and returns the positional arguments. Flags
// may follow positional arguments, as in "signet inspect t.jwt -json",
// and "--" ends the flags. On failure it returns the exit status: 0 for
// -h, 2 for an invalid flag (the flag package has printed why).
func parse(fs *flag.FlagSet, args []string) ([]string, int, bool) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, false
			}
			return nil, exitError, false
		}

		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), 0, true
		}
		if len(rest) == 0 {
			return positional, 0, true
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// fail prints an error of subcommand name to stderr and returns status.
func (c *command) fail(name string, status int, format string, args ...any) int {
	fmt.Fprintf(c.stderr, "signet %s: %s\n", name, fmt.Sprintf(format, args...))
	return status
}

// listFlag is a flag of comma-separated values; repeating the flag adds
// to the list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return fmt.Errorf("list %q has an empty item; separate values with single commas", v)
		}
		*l = append(*l, item)
	}
	return nil
}
