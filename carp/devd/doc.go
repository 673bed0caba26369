// Package devd reads FreeBSD devd.conf(5) files and decides, for an event,
// which actions devd(8) would run, so that carpd can honour an existing
// FreeBSD devd.conf verbatim. It is pure: besides Load reading files it
// touches nothing; running actions is the caller's job.
//
// The behaviour follows FreeBSD's sbin/devd (token.l, parse.y, devd.cc,
// devd.hh), checked against its source:
//
//   - Comments are "#" and "//" to the end of the line and C "/* */"
//     (not nested). Strings are double-quoted, at least one character, may
//     span lines, cannot contain a double quote, and know one escape: a
//     backslash-newline drops itself and the white space after it. Every
//     other backslash is kept (so regular expressions keep theirs).
//   - Grammar: options { directory "d"; pid-file "f"; set name "v"; };
//     and attach|detach|nomatch|notify N { clauses };, where a clause is
//     match "var" "re"; device-name|class|subdevice "re"; media-type "t";
//     or action "cmd";. `set` exists only in options. A statement with an
//     empty block is accepted and dropped, as devd drops it.
//   - A match is "^" + its regex (variables expanded at parse time, a
//     leading "!" inverts) + "$", compiled REG_EXTENDED|REG_ICASE: anchored
//     at both ends and case-insensitive. Note "^a|b$" is (^a)|(b$), in devd
//     and here alike. Go's RE2 engine is used after translateERE; a regex
//     it cannot take never matches and is reported in Config.Warnings
//     (devd ignores a regcomp failure the same way).
//   - Statements of a kind are stable-sorted by decreasing priority; for an
//     event devd runs the actions of the first statement whose clauses all
//     match, and no other (find_and_execute breaks after one). Match does
//     not: by bsdcarp's rule (carpd(8), "Events") it returns the actions of every matching
//     statement in that order; First gives devd's single choice.
//   - Actions are expanded when run: $$, $(...) (with devd's off-by-one:
//     see Config.Expand), $name; unset names give "", and values are
//     quoted as single shell words. NotifyEvent builds an event's
//     variables from a kernel notify line as devd does, with "*" and "_".
//
// Deliberate differences: characters no lexer rule matches (devd's flex
// scanner echoes and skips them) and "" are syntax errors here; directory
// files are read in name order (devd: readdir order); each directory is
// read once; action values are quoted '...' for POSIX sh instead of devd's
// $'...', which dash does not understand.
package devd
