package vps

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// errShellSyntax marks command lines that need a real shell (pipes, redirections, variables):
// the simulator runs single commands only.
var errShellSyntax = errors.New("shell syntax is not simulated")

// splitWords splits a command line into words as sh(1) would for a simple command.
func splitWords(line string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
	)
	flush := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\n':
			flush()
		case ch == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated quoted string")
			}
			cur.WriteString(line[i+1 : i+1+end])
			inWord = true
			i += end + 1
		case ch == '"':
			inWord = true
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				switch {
				case line[i] == '\\' && i+1 < len(line) && strings.IndexByte("$`\"\\\n", line[i+1]) >= 0:
					i++
					if line[i] != '\n' {
						cur.WriteByte(line[i])
					}
				case line[i] == '$' || line[i] == '`':
					return nil, fmt.Errorf("%w: %q", errShellSyntax, line[i:i+1])
				default:
					cur.WriteByte(line[i])
				}
			}
			if i >= len(line) {
				return nil, errors.New("unterminated quoted string")
			}
		case ch == '\\':
			if i+1 < len(line) {
				i++
				if line[i] != '\n' {
					cur.WriteByte(line[i])
					inWord = true
				}
			}
		case ch == '#' && !inWord:
			flush()
			return words, nil
		case strings.IndexByte("|&;<>()$`", ch) >= 0 || globChars(ch) || ch == '~' && !inWord:
			return nil, fmt.Errorf("%w: %q", errShellSyntax, string(ch))
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	flush()
	return words, nil
}

// globChars reports whether an unquoted ch would make sh expand a pattern; expanding patterns
// against the simulated tree is not simulated, so such words must be quoted.
func globChars(ch byte) bool { return ch == '*' || ch == '?' || ch == '[' }

// quoteArgs renders argv as one shell line, quoting where needed; used for records.
func quoteArgs(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
		}) < 0 {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}

// splitList cuts a command line at unquoted `;`, `&&`, `||` and newlines.
func splitList(line string) ([]string, []string, error) {
	var parts, ops []string
	start := 0
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			i++
		case '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, nil, errors.New("unterminated quoted string")
			}
			i += end + 1
		case '"':
			for i++; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' {
					i++
				}
			}
			if i >= len(line) {
				return nil, nil, errors.New("unterminated quoted string")
			}
		case ';', '\n':
			parts, ops = append(parts, line[start:i]), append(ops, ";")
			start = i + 1
		case '&', '|':
			if i+1 < len(line) && line[i+1] == line[i] {
				parts, ops = append(parts, line[start:i]), append(ops, line[i:i+2])
				start = i + 2
				i++
			}
		}
	}
	parts = append(parts, line[start:])
	// Empty pieces (a trailing `;`, blank lines) are no commands; keep ops aligned.
	var keptParts, keptOps []string
	for i, part := range parts {
		if strings.TrimSpace(part) == "" {
			if i > 0 && ops[i-1] != ";" {
				return nil, nil, fmt.Errorf("%w: %q without a command", errShellSyntax, ops[i-1])
			}
			continue
		}
		if len(keptParts) > 0 {
			keptOps = append(keptOps, ops[i-1])
		}
		keptParts = append(keptParts, part)
	}
	return keptParts, keptOps, nil
}

// parseFlags reads GNU-style options: -m 0600, -m0600, --mode=0600, --mode 0600, -fT.
func parseFlags(prog string, args []string, valued map[string]string, bools map[string]string) (map[string]string, []string, error) {
	got := map[string]string{}
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return got, append(rest, args[i+1:]...), nil
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			if c, ok := valued["--"+name]; ok {
				if !hasVal {
					if i+1 >= len(args) {
						return nil, nil, fmt.Errorf("%s: option '--%s' requires an argument", prog, name)
					}
					i++
					val = args[i]
				}
				got[c] = val
				continue
			}
			if c, ok := bools["--"+name]; ok && !hasVal {
				got[c] = "1"
				continue
			}
			return nil, nil, fmt.Errorf("%s: unrecognized option '%s'", prog, a)
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for j := 1; j < len(a); j++ {
				opt := "-" + a[j:j+1]
				if c, ok := valued[opt]; ok {
					val := a[j+1:]
					if val == "" {
						if i+1 >= len(args) {
							return nil, nil, fmt.Errorf("%s: option requires an argument -- '%c'", prog, a[j])
						}
						i++
						val = args[i]
					}
					got[c] = val
					break
				}
				c, ok := bools[opt]
				if !ok {
					return nil, nil, fmt.Errorf("%s: invalid option -- '%c'", prog, a[j])
				}
				got[c] = "1"
			}
		default:
			rest = append(rest, a)
		}
	}
	return got, rest, nil
}

func parseOctalMode(s string) (fs.FileMode, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o7777 {
		return 0, fmt.Errorf("invalid mode '%s' (only octal modes are simulated)", s)
	}
	return fileMode(uint32(n)), nil
}
