package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// completionCommand prints a shell script that completes etcd-ipam's
// commands and flags by asking etcd-ipam itself (the hidden
// --generate-bash-completion flag), so the completions never go stale.
func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script for bash or zsh",
		UsageText: "etcd-ipam completion bash|zsh",
		Description: "Load it in the current shell, or add the line to ~/.bashrc or ~/.zshrc.\n\n" +
			"Example:\n\n" +
			"   source <(etcd-ipam completion bash)",
		Action: runCompletion,
	}
}

// bashCompletion asks the binary being completed for its candidates.
const bashCompletion = `# etcd-ipam completion for bash
_etcd_ipam_complete() {
	local cur words
	COMPREPLY=()
	cur="${COMP_WORDS[COMP_CWORD]}"
	if [[ "$cur" == -* ]]; then
		words=$("${COMP_WORDS[@]:0:$COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
	else
		words=$("${COMP_WORDS[@]:0:$COMP_CWORD}" --generate-bash-completion 2>/dev/null)
	fi
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o bashdefault -o default -F _etcd_ipam_complete etcd-ipam
`

func runCompletion(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageErrorf("completion takes one shell, bash or zsh")
	}
	switch shell := c.Args().First(); shell {
	case "bash":
		fmt.Fprint(c.App.Writer, bashCompletion)
	case "zsh":
		// zsh runs bash completion functions through bashcompinit.
		fmt.Fprint(c.App.Writer, "autoload -U +X bashcompinit && bashcompinit\n"+bashCompletion)
	default:
		return usageErrorf("completion: unknown shell %q; use bash or zsh", shell)
	}
	return nil
}
