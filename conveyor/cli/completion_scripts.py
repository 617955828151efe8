"""The text of the completion scripts: the parser's data (`completion.walk`) as each shell's
code. Bash and zsh share one function that finds what the word under the cursor is (written
in the part of the language both run the same, zsh under its ksh emulation); fish gets its
own `complete` rules."""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conveyor.cli.completion import Command

# Finds the candidates for word $1 of the array __conveyor_words: a first line that names
# their kind (words, file, dir), then one a line, VALUE<TAB>DESCRIPTION. (No variable is
# called `path`: zsh ties that one to PATH.)
_CORE = r"""
__conveyor_candidates() {
    local cword=$1 command="" i=1 n=0 word kind="" build="" subs cur
    local -a conn
    conn=()
    while [ "$i" -lt "$cword" ]; do
        word=${__conveyor_words[i]}
        case "$word" in
            -*=*) ;;
            -*)
                kind=$(__conveyor_flag_kind "$command" "$word")
                if [ "$kind" != none ]; then
                    if [ $((i + 1)) -eq "$cword" ]; then
                        break
                    fi
                    case " $__conveyor_connection " in
                        *" $word "*) conn+=("$word" "${__conveyor_words[i + 1]}") ;;
                    esac
                    i=$((i + 1))
                fi
                kind="" ;;
            *)
                subs=$(__conveyor_subs "$command")
                case " $subs " in
                    *" $word "*)
                        if [ "$n" -eq 0 ]; then command="${command:+$command }$word"; fi ;;
                    *)
                        if [ "$n" -eq 0 ]; then build=$word; fi
                        n=$((n + 1)) ;;
                esac ;;
        esac
        i=$((i + 1))
    done
    cur=${__conveyor_words[cword]}
    if [ -z "$kind" ] || [ "$kind" = none ]; then
        case "$cur" in
            -*)
                printf 'words\n'
                __conveyor_flags "$command"
                return ;;
        esac
        subs=$(__conveyor_subs "$command")
        if [ -n "$subs" ] && [ "$n" -eq 0 ]; then
            printf 'words\n'
            printf '%s\n' $subs
            return
        fi
        kind=$(__conveyor_arg_kind "$command" "$n")
    fi
    case "$kind" in
        file|dir) printf '%s\n' "$kind" ;;
        words:*) printf 'words\n'; printf '%s\n' ${kind#words:} ;;
        builds|contexts) printf 'words\n'; conveyor __complete "$kind" "${conn[@]}" 2>/dev/null ;;
        jobs)
            printf 'words\n'
            [ -z "$build" ] || conveyor __complete jobs "$build" "${conn[@]}" 2>/dev/null ;;
        *) printf 'words\n' ;;
    esac
}
"""

_BASH = r"""
_conveyor() {
    local -a __conveyor_words
    __conveyor_words=("${COMP_WORDS[@]}")
    local out kind line first=1 cur=${COMP_WORDS[COMP_CWORD]}
    out=$(__conveyor_candidates "$COMP_CWORD")
    kind=${out%%$'\n'*}
    COMPREPLY=()
    case "$kind" in
        file) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return ;;
        dir) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur")); return ;;
    esac
    while IFS= read -r line; do
        if [ "$first" = 1 ]; then first=0; continue; fi
        line=${line%%$'\t'*}
        if [ -n "$line" ] && [[ $line == "$cur"* ]]; then COMPREPLY+=("$line"); fi
    done <<< "$out"
}
complete -F _conveyor conveyor
"""

_ZSH = r"""
_conveyor() {
    local -a __conveyor_words values shown
    __conveyor_words=("${words[@]}")
    local out kind line
    out=$(emulate ksh; __conveyor_candidates $((CURRENT - 1)))
    kind=${out%%$'\n'*}
    case "$kind" in
        file) _files; return ;;
        dir) _files -/; return ;;
    esac
    [[ $out == *$'\n'* ]] || return 1
    while IFS= read -r line; do
        [[ -n $line ]] || continue
        values+=("${line%%$'\t'*}")
        shown+=("${line//$'\t'/  -- }")
    done <<< "${out#*$'\n'}"
    compadd -l -d shown -- "${values[@]}"
}
compdef _conveyor conveyor
"""

_FISH = r"""
function __conveyor_state
    # "PATH|N|BUILD": the command path typed, how many arguments after it, the first of them.
    set -l line (commandline -pc)
    if test "$line" = "$__conveyor_cached_line"
        echo $__conveyor_cached_state
        return
    end
    set -l words (commandline -opc)
    set -l path ""
    set -l n 0
    set -l build ""
    set -l skip 0
    for word in $words[2..-1]
        if test $skip -eq 1
            set skip 0
            continue
        end
        switch $word
            case '-*=*'
            case '-*'
                contains -- "$path|$word" $__conveyor_value_flags; and set skip 1
            case '*'
                if test $n -eq 0; and contains -- "$path|$word" $__conveyor_sub_paths
                    set path (string trim -- "$path $word")
                else
                    test $n -eq 0; and set build $word
                    set n (math $n + 1)
                end
        end
    end
    set -g __conveyor_cached_line $line
    set -g __conveyor_cached_state "$path|$n|$build"
    echo $__conveyor_cached_state
end

function __conveyor_at -a want
    set -l state (string split '|' -- (__conveyor_state))
    test "$state[1]" = "$want"
end

function __conveyor_arg -a want index
    set -l state (string split '|' -- (__conveyor_state))
    test "$state[1]" = "$want"; and test "$state[2]" = "$index"
end

function __conveyor_dynamic -a kind
    set -l words (commandline -opc)
    set -l conn
    for i in (seq 2 (count $words))
        if contains -- $words[$i] $__conveyor_connection_flags; and test $i -lt (count $words)
            set -a conn $words[$i] $words[(math $i + 1)]
        end
    end
    if test $kind = jobs
        set -l state (string split '|' -- (__conveyor_state))
        test -n "$state[3]"; or return
        conveyor __complete jobs $state[3] $conn 2>/dev/null
    else
        conveyor __complete $kind $conn 2>/dev/null
    end
end

complete -c conveyor -f
"""


def render(shell: str, commands: Sequence[Command], connection: Sequence[str]) -> str:
    """The script for `shell`; `connection`: the flags passed on to `conveyor __complete`."""
    header = f"# conveyor completion for {shell}: generated by `conveyor completion {shell}`.\n"
    flags = " ".join(connection)
    if shell == "fish":
        rules = "\n".join(_fish_rules(commands))
        return f"{header}{_FISH}set -g __conveyor_connection_flags {flags}\n{rules}\n"
    data = "\n".join([f"__conveyor_connection={shlex.quote(flags)}", *_shell_data(commands)])
    wrapper = _BASH if shell == "bash" else _ZSH
    head = "#compdef conveyor\n" if shell == "zsh" else ""
    return head + header + data + _CORE + wrapper


def _case(function: str, entries: Sequence[tuple[str, str]], default: str = "") -> Iterator[str]:
    yield f"{function}() {{"
    yield '    case "$1|$2" in' if "|" in (entries[0][0] if entries else "") else '    case "$1" in'
    for key, value in entries:
        yield f"        {shlex.quote(key)}) printf '%s\\n' {value} ;;"
    if default:
        yield f"        *) printf '%s\\n' {default} ;;"
    yield "    esac"
    yield "}"


def _shell_data(commands: Sequence[Command]) -> Iterator[str]:
    subs = [(c.path, shlex.quote(" ".join(c.subcommands))) for c in commands if c.subcommands]
    yield from _case("__conveyor_subs", subs)
    flags = [(c.path, " ".join(shlex.quote(f) for f in c.flags)) for c in commands if c.flags]
    yield from _case("__conveyor_flags", flags)
    kinds = [
        (f"{c.path}|{flag}", shlex.quote(kind))
        for c in commands
        for flag, kind in c.flags.items()
        if kind != "none"
    ]
    yield from _case("__conveyor_flag_kind", kinds, "none")
    positionals = [
        (f"{c.path}|{index}", shlex.quote(kind))
        for c in commands
        for index, kind in enumerate(c.positionals)
    ]
    yield from _case("__conveyor_arg_kind", positionals, "value")


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish_values(kind: str) -> str:
    if kind == "file":
        return "-F"
    if kind == "dir":
        return "-x -a '(__fish_complete_directories)'"
    if kind.startswith("words:"):
        return "-x -a " + _fish_quote(kind.removeprefix("words:"))
    if kind in ("builds", "jobs", "contexts"):
        return f"-x -a '(__conveyor_dynamic {kind})'"
    return "-x" if kind == "value" else ""


def _fish_rules(commands: Sequence[Command]) -> Iterator[str]:
    value_flags = [f"{c.path}|{f}" for c in commands for f, k in c.flags.items() if k != "none"]
    sub_paths = [f"{c.path}|{s}" for c in commands for s in c.subcommands]
    yield "set -g __conveyor_value_flags " + " ".join(map(_fish_quote, value_flags))
    yield "set -g __conveyor_sub_paths " + " ".join(map(_fish_quote, sub_paths))
    helps = {c.path: c.help for c in commands}
    for command in commands:
        at = _fish_quote(f"__conveyor_arg {_fish_quote(command.path)} 0")
        for sub in command.subcommands:
            described = helps.get(f"{command.path} {sub}".strip(), "")
            yield f"complete -c conveyor -n {at} -a {_fish_quote(sub)} -d {_fish_quote(described)}"
        where = _fish_quote(f"__conveyor_at {_fish_quote(command.path)}")
        for flag, kind in command.flags.items():
            name = f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}"
            yield f"complete -c conveyor -n {where} {name} {_fish_values(kind)}".rstrip()
        for index, kind in enumerate(command.positionals):
            arg = _fish_quote(f"__conveyor_arg {_fish_quote(command.path)} {index}")
            yield f"complete -c conveyor -n {arg} {_fish_values(kind) or '-x'}"
