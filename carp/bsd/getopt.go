package bsd

import "strings"

// getopt walks the leading options of args as getopt(3) does without
// permutation, as both BSD commands parse theirs: options end at "--" or at
// the first word that is not "-x..."; several may share a word ("-an"); an
// option listed in withArg takes the rest of its word or the next word as
// its argument. It calls opt for every option (arg is "" for the others),
// missing when an option's argument is absent, and returns the operands.
func getopt(args []string, withArg string, opt func(c byte, arg string) error, missing func(c byte) error) ([]string, error) {
	return getoptUntil(args, withArg, nil, opt, missing)
}

// getoptUntil is getopt that also ends the options at the first word for
// which operand (when not nil) reports true: OpenBSD's "-g carp
// -carpdemote" is an operand that looks like an option.
func getoptUntil(args []string, withArg string, operand func(string) bool, opt func(c byte, arg string) error, missing func(c byte) error) ([]string, error) {
	i := 0
	for i < len(args) {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' || (operand != nil && operand(a)) {
			break
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			arg := ""
			if strings.IndexByte(withArg, c) >= 0 {
				switch {
				case j+1 < len(a):
					arg = a[j+1:]
				case i+1 < len(args):
					i++
					arg = args[i]
				default:
					return nil, missing(c)
				}
				j = len(a)
			}
			if err := opt(c, arg); err != nil {
				return nil, err
			}
		}
		i++
	}
	return args[i:], nil
}
