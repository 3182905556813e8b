"""The one table of the boundary: every path pattern corral treats specially, its kind, why it matters,
and whether a project rule for it needs an explicit confirmation.

The sandbox reads it to build the policy (what is protected in the workspace, what is hidden or readable
in the home, which tool-chain caches get a private layer) and the prompt reads it to say why a violation
matters. One table, so the two never disagree.

The principle behind the `PROTECTED` rows is not "known attack files" but *anything a host tool later
runs or loads as code or configuration from the workspace*: git's whole control surface (config, hooks,
info, modules, worktrees, an in-progress rebase's todo list, alternates, and the files that turn a
directory into a bare repository), build-tool launchers and wrappers (Maven, Gradle, sbt, cargo,
rustup, yarn releases, version managers), editor and dev-container configuration, agent configuration,
hook managers, direnv, shell start-up files, and virtualenv launchers. Files that these pull in at run
time (git `include.path`, direnv `dotenv`) are resolved when the policy is built (`sandbox.pulled`).

The home rows are an allow-list: `READABLE` and `CACHE` rows are what a sandboxed command may read in
the home; everything else there is hidden. `CREDENTIAL` rows stay hidden even where something wider
would show them (a home used as the workspace, an allow-listed parent) and name the stores a workspace
may never be. `APPEND` rows are hidden shell start-up files whose stand-in takes appends (asked, applied
after the real content: `sandbox.appends`); `FILTERED` rows are registry configs shown as a copy without
their credentials (`sandbox.registryview`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """What corral does with a path that matches a row."""

    PROTECTED = "protected"
    """In the workspace, at any depth: a change is an `fs-protected` violation, asked, never applied silently."""
    CREDENTIAL = "credential"
    """In the home: always hidden (a decoy), its reads reported; never a workspace."""
    READABLE = "readable"
    """In the home: visible read-only. Non-secret configuration tools commonly need."""
    CACHE = "cache"
    """In the home: a tool-chain cache, visible and writable through a per-project layer corral owns."""
    PRIVATE_CACHE = "private-cache"
    """In the home: a per-project layer that starts empty; the host's content stays hidden (it can hold
    tokens), the listed tool caches inside it are shown on top."""
    APPEND = "append"
    """In the home: a shell start-up file, hidden like everything else, whose stand-in takes appends: the
    lines a command adds (`>> ~/.bashrc`) are captured against the real file and asked (`sandbox.appends`)."""
    FILTERED = "filtered"
    """In the home: a package-registry config shown as a filtered copy (index and registry URLs,
    certificates kept; tokens, passwords and credentials in URLs dropped; `sandbox.registryview`)."""


@dataclass(frozen=True, slots=True)
class Row:
    """One pattern. Protected patterns are relative (`*` matches within one component, matched
    case-folded and NFC-normalised); home patterns start with `~/`. `subtree`: everything below matches
    too. `top`: matches only at the top of the workspace (not at any depth)."""

    pattern: str
    kind: Kind
    why: str
    sensitive: bool = True
    subtree: bool = False
    top: bool = False


_GIT_RUNS = "git runs or loads it outside the sandbox at your next git command"
_GIT_CONFIG = "can set hooksPath, fsmonitor, aliases or a pager run by your next git command"
_BARE = "with HEAD, config, objects and refs here, host git treats the workspace as a bare repository and runs its config"
_AGENT = "agent config: hooks and MCP servers here run outside any sandbox when an agent starts"
_EDITOR = "your editor or IDE runs tasks, tools or language servers from here when you open the project"
_WRAPPER = "a build-tool launcher: it downloads and runs code at your next build"
_BUILD_CONFIG = "build-tool launcher config: JVM options or wrappers here run code at your next build"
_HOOK_MANAGER = "a git-hook manager runs the commands named here at your next commit"
_VERSION = "version managers install and run what it names when you enter the directory"
_SHELL = "runs in a shell started here (a dotfiles checkout or a home used as the workspace)"
_VENV = "the virtualenv's launcher: your shell runs it when the environment is active"
_DIRENV = "runs in your shell when direnv loads this directory"
_CRED = "holds credentials: whoever reads it can act as you"
_HISTORY = "shell and REPL histories often hold pasted secrets"

_PROTECTED: tuple[Row, ...] = (
    # git's control surface
    Row(
        ".git",
        Kind.PROTECTED,
        "the repository's control directory: replacing it swaps your git config and hooks",
    ),
    Row(".git/config", Kind.PROTECTED, _GIT_CONFIG),
    Row(".git/config.worktree", Kind.PROTECTED, _GIT_CONFIG),
    Row(".git/commondir", Kind.PROTECTED, "points git at another repository's config and hooks"),
    Row(".git/hooks", Kind.PROTECTED, "git runs hooks outside the sandbox", subtree=True),
    Row(
        ".git/info",
        Kind.PROTECTED,
        "attributes and sparse-checkout rules git applies at your next checkout",
        subtree=True,
    ),
    Row(
        ".git/modules",
        Kind.PROTECTED,
        "submodule repositories: their config and hooks run like the top one's",
        subtree=True,
    ),
    Row(
        ".git/worktrees",
        Kind.PROTECTED,
        "linked worktrees: their config, gitdir and commondir steer host git",
        subtree=True,
    ),
    Row(
        ".git/rebase-merge",
        Kind.PROTECTED,
        "an in-progress rebase: `exec` lines in its todo run at `git rebase --continue`",
        subtree=True,
    ),
    Row(".git/rebase-apply", Kind.PROTECTED, "an in-progress am/rebase that host git resumes", subtree=True),
    Row(
        ".git/sequencer",
        Kind.PROTECTED,
        "an in-progress cherry-pick or revert that host git resumes",
        subtree=True,
    ),
    Row(".git/objects/info/alternates", Kind.PROTECTED, "makes git read objects from another directory"),
    Row(
        ".gitmodules", Kind.PROTECTED, "submodule URLs and update commands run at your next submodule update"
    ),
    Row("HEAD", Kind.PROTECTED, _BARE, top=True),
    Row("config", Kind.PROTECTED, _BARE, top=True),
    Row("objects", Kind.PROTECTED, _BARE, top=True, subtree=True),
    Row("refs", Kind.PROTECTED, _BARE, top=True, subtree=True),
    Row("commondir", Kind.PROTECTED, _BARE, top=True),
    # agents, editors, dev containers
    Row(
        ".corral",
        Kind.PROTECTED,
        "corral's project config: it decides what this project's commands may do",
        subtree=True,
    ),
    *(
        Row(name, Kind.PROTECTED, _AGENT, subtree=True)
        for name in (
            ".claude",
            ".codex",
            ".gemini",
            ".cursor",
            ".agents",
            ".continue",
            ".windsurf",
            ".kiro",
            ".roo",
            ".opencode",
            ".amazonq",
            ".junie",
            ".clinerules",
            ".goose",
        )
    ),
    Row(
        ".mcp.json",
        Kind.PROTECTED,
        "MCP servers listed here start outside any sandbox when an agent opens the project",
    ),
    Row("opencode.json*", Kind.PROTECTED, _AGENT),
    Row(".aider.conf.yml", Kind.PROTECTED, "aider runs its lint-cmd and test-cmd after its edits"),
    *(
        Row(name, Kind.PROTECTED, _EDITOR, subtree=True)
        for name in (
            ".vscode",
            ".idea",
            ".fleet",
            ".zed",
            ".helix",
            ".theia",
            ".nvim",
            ".devcontainer",
        )
    ),
    *(
        Row(name, Kind.PROTECTED, _EDITOR)
        for name in (
            ".devcontainer.json",
            "*.code-workspace",
            ".exrc",
            ".nvimrc",
            ".nvim.lua",
            ".lvimrc",
            ".dir-locals.el",
            ".dir-locals-2.el",
        )
    ),
    # git-hook managers
    Row(".husky", Kind.PROTECTED, "husky hooks run outside the sandbox at your next commit", subtree=True),
    Row(".lefthook", Kind.PROTECTED, _HOOK_MANAGER, subtree=True),
    Row(".git-hooks", Kind.PROTECTED, _HOOK_MANAGER, subtree=True),
    Row(
        ".pre-commit-config.yaml",
        Kind.PROTECTED,
        "pre-commit runs the hooks listed here outside the sandbox at your next commit",
    ),
    Row("lefthook*.*", Kind.PROTECTED, _HOOK_MANAGER),
    Row(".lefthook*.*", Kind.PROTECTED, _HOOK_MANAGER),
    Row(".overcommit.yml", Kind.PROTECTED, _HOOK_MANAGER),
    # build-tool launchers, wrappers and their config
    Row(".mvn", Kind.PROTECTED, _BUILD_CONFIG, subtree=True),
    *(
        Row(name, Kind.PROTECTED, _WRAPPER)
        for name in ("mvnw", "mvnw.cmd", "gradlew", "gradlew.bat", "sbt", "sbtw", "bazelisk")
    ),
    Row("gradle/wrapper", Kind.PROTECTED, _WRAPPER, subtree=True),
    Row(
        "gradle.properties",
        Kind.PROTECTED,
        "Gradle reads JVM options (a -javaagent runs code) from it at your next build",
    ),
    Row("init.gradle*", Kind.PROTECTED, _BUILD_CONFIG),
    Row(".jvmopts", Kind.PROTECTED, _BUILD_CONFIG),
    Row(".sbtopts", Kind.PROTECTED, _BUILD_CONFIG),
    Row(".bazelrc", Kind.PROTECTED, _BUILD_CONFIG),
    Row(".bazelversion", Kind.PROTECTED, _WRAPPER),
    Row(
        ".cargo/config",
        Kind.PROTECTED,
        "cargo runs the runners and rustc wrappers named here at your next build",
    ),
    Row(
        ".cargo/config.toml",
        Kind.PROTECTED,
        "cargo runs the runners and rustc wrappers named here at your next build",
    ),
    Row(
        "rust-toolchain",
        Kind.PROTECTED,
        "rustup runs the toolchain it names (a path toolchain is any program)",
    ),
    Row(
        "rust-toolchain.toml",
        Kind.PROTECTED,
        "rustup runs the toolchain it names (a path toolchain is any program)",
    ),
    Row(".npmrc", Kind.PROTECTED, "package-manager config: can change registries, tokens or run scripts"),
    Row(".yarnrc", Kind.PROTECTED, "package-manager config: can change registries, tokens or run scripts"),
    Row(".yarnrc.yml", Kind.PROTECTED, "yarn runs `yarnPath` and plugins named here at every yarn command"),
    Row(
        ".yarn/releases",
        Kind.PROTECTED,
        "yarn runs the release named by yarnPath at every yarn command",
        subtree=True,
    ),
    Row(".yarn/plugins", Kind.PROTECTED, "yarn loads these plugins at every yarn command", subtree=True),
    Row(".pnpmfile.cjs", Kind.PROTECTED, "pnpm runs it at every install"),
    Row("bunfig.toml", Kind.PROTECTED, "bun preloads the scripts named here"),
    Row(".tool-versions", Kind.PROTECTED, _VERSION),
    Row("mise.toml", Kind.PROTECTED, "mise runs tasks and hooks from it when you enter the directory"),
    Row(".mise.toml", Kind.PROTECTED, "mise runs tasks and hooks from it when you enter the directory"),
    Row("mise.*.toml", Kind.PROTECTED, "mise runs tasks and hooks from it when you enter the directory"),
    Row(
        ".mise",
        Kind.PROTECTED,
        "mise runs tasks and hooks from it when you enter the directory",
        subtree=True,
    ),
    Row(".sdkmanrc", Kind.PROTECTED, _VERSION),
    Row(".envrc", Kind.PROTECTED, _DIRENV),
    Row(".envrc.*", Kind.PROTECTED, _DIRENV),
    Row(".venv/pyvenv.cfg", Kind.PROTECTED, "names the interpreter the virtualenv runs"),
    Row(".venv/pip.conf", Kind.PROTECTED, "pip in this virtualenv installs from the index named here"),
    Row(".venv/bin/python*", Kind.PROTECTED, _VENV),
    Row(".venv/bin/activate*", Kind.PROTECTED, _VENV),
    # shell start-up files (dotfiles checkouts)
    *(
        Row(name, Kind.PROTECTED, _SHELL)
        for name in (
            ".bashrc",
            ".bash_profile",
            ".bash_login",
            ".bash_logout",
            ".bash_aliases",
            ".profile",
            ".zshrc",
            ".zshenv",
            ".zprofile",
            ".zlogin",
            ".zlogout",
            ".cshrc",
            ".tcshrc",
            ".kshrc",
        )
    ),
)

_CREDENTIALS: tuple[Row, ...] = tuple(
    Row(pattern, Kind.CREDENTIAL, why)
    for pattern, why in (
        ("~/.ssh", "ssh trusts what is here: keys, authorized logins, ProxyCommand"),
        ("~/.aws", "holds AWS credentials"),
        ("~/.gnupg", "holds your GPG private keys"),
        ("~/.netrc", "holds login passwords for hosts"),
        ("~/.git-credentials", "holds git passwords and tokens"),
        ("~/.config/git/credentials", "holds git passwords and tokens"),
        ("~/.config/gh", "holds your GitHub token"),
        ("~/.config/hub", _CRED),
        ("~/.config/gcloud", "holds Google Cloud credentials"),
        ("~/.azure", "holds Azure credentials"),
        ("~/.kube", "holds Kubernetes cluster credentials"),
        ("~/.docker", "holds container-registry credentials"),
        ("~/.npmrc", "holds package-registry tokens"),
        ("~/.yarnrc", "holds package-registry tokens"),
        ("~/.pypirc", "holds package-index credentials"),
        ("~/.config/pip", _CRED),
        ("~/.cargo/credentials", "holds your crates.io token"),
        ("~/.cargo/credentials.toml", "holds your crates.io token"),
        ("~/.gem/credentials", _CRED),
        ("~/.terraform.d", _CRED),
        ("~/.vault-token", _CRED),
        ("~/.password-store", "holds your passwords"),
        ("~/.local/share/keyrings", "holds your passwords"),
        ("~/.config/op", _CRED),
        ("~/.pgpass", "holds database passwords"),
        ("~/.my.cnf", "holds database passwords"),
        ("~/.s3cfg", _CRED),
        ("~/.config/sops", "holds sops/age decryption keys"),
        ("~/.config/age", "holds age decryption keys"),
        ("~/.config/rclone", "holds cloud-storage tokens"),
        ("~/.config/doctl", _CRED),
        ("~/.pulumi", _CRED),
        ("~/.fly", _CRED),
        ("~/.vercel", _CRED),
        ("~/.local/share/com.vercel.cli", _CRED),
        ("~/.wrangler", _CRED),
        ("~/.config/.wrangler", _CRED),
        ("~/.m2/settings.xml", "holds repository passwords"),
        ("~/.gradle/gradle.properties", "holds repository passwords and signing keys"),
        ("~/.mozilla", "browser profile: cookies and saved logins"),
        ("~/.config/google-chrome", "browser profile: cookies and saved logins"),
        ("~/.config/chromium", "browser profile: cookies and saved logins"),
        ("~/.config/BraveSoftware", "browser profile: cookies and saved logins"),
        ("~/.claude", _CRED),
        ("~/.claude.json", "Claude Code's settings and credentials"),
        ("~/.codex", _CRED),
        ("~/.gemini", _CRED),
        ("~/.config/github-copilot", _CRED),
        ("~/.cursor", _CRED),
        ("~/.aider.conf.yml", _CRED),
        ("~/.config/openai", _CRED),
        ("~/.bash_history", _HISTORY),
        ("~/.zsh_history", _HISTORY),
        ("~/.python_history", _HISTORY),
        ("~/.psql_history", _HISTORY),
        ("~/.mysql_history", _HISTORY),
        ("~/.node_repl_history", _HISTORY),
        ("~/.sqlite_history", _HISTORY),
        ("~/.lesshst", _HISTORY),
        ("~/.local/share/fish/fish_history", _HISTORY),
    )
)

_NONSECRET = "non-secret configuration tools commonly read"
_TOOLCHAIN = "installed tool chains: commands and interpreters your tools run"

_READABLE: tuple[Row, ...] = tuple(
    Row(pattern, Kind.READABLE, why, sensitive=False)
    for pattern, why in (
        ("~/.gitconfig", _NONSECRET),
        ("~/.config/git/config", _NONSECRET),
        ("~/.config/git/ignore", _NONSECRET),
        ("~/.config/git/attributes", _NONSECRET),
        ("~/.gitignore_global", _NONSECRET),
        ("~/.editorconfig", _NONSECRET),
        ("~/.inputrc", _NONSECRET),
        ("~/.terminfo", _NONSECRET),
        ("~/.local/bin", _TOOLCHAIN),
        ("~/.local/lib", _TOOLCHAIN),
        ("~/.local/share/mise", _TOOLCHAIN),
        ("~/.local/share/pnpm", _TOOLCHAIN),
        ("~/.cargo/bin", _TOOLCHAIN),
        ("~/.cargo/env", _TOOLCHAIN),
        ("~/.rustup", _TOOLCHAIN),
        ("~/.nvm", _TOOLCHAIN),
        ("~/.volta", _TOOLCHAIN),
        ("~/.pyenv", _TOOLCHAIN),
        ("~/.rbenv", _TOOLCHAIN),
        ("~/.asdf", _TOOLCHAIN),
        ("~/.sdkman/candidates", _TOOLCHAIN),
        ("~/.deno/bin", _TOOLCHAIN),
        ("~/.bun/bin", _TOOLCHAIN),
        ("~/go/bin", _TOOLCHAIN),
        ("~/.dotnet", _TOOLCHAIN),
        ("~/.ghcup/bin", _TOOLCHAIN),
        ("~/.elan", _TOOLCHAIN),
        ("~/.juliaup", _TOOLCHAIN),
        ("~/.claude/shell-snapshots", "shell snapshots agents source before each command"),
    )
)

_CACHES: tuple[Row, ...] = (
    Row(
        "~/.cache",
        Kind.PRIVATE_CACHE,
        "a per-project cache layer; the host's ~/.cache can hold tokens",
        sensitive=False,
    ),
    *(
        Row(
            pattern,
            Kind.CACHE,
            "a tool-chain cache: a per-project layer, never written back",
            sensitive=False,
        )
        for pattern in (
            "~/.cache/pip",
            "~/.cache/uv",
            "~/.cache/pypoetry",
            "~/.cache/pre-commit",
            "~/.cache/go-build",
            "~/.cache/yarn",
            "~/.cache/pnpm",
            "~/.cache/node-gyp",
            "~/.cache/deno",
            "~/.cache/bazel",
            "~/.cache/ms-playwright",
            "~/.cache/ruff",
            "~/.cache/mypy",
            "~/.cache/sccache",
            "~/.cache/ccache",
            "~/.cache/zig",
            "~/.cache/coursier",
            "~/.cache/typescript",
            "~/.cache/fontconfig",
            "~/.npm",
            "~/.yarn",
            "~/.pnpm-store",
            "~/.cargo/registry",
            "~/.cargo/git",
            "~/go/pkg/mod",
            "~/.m2/repository",
            "~/.gradle/caches",
            "~/.gradle/wrapper",
            "~/.rustup/downloads",
            "~/.local/share/uv",
            "~/.bun/install/cache",
            "~/.ivy2/cache",
            "~/.sbt/boot",
        )
    ),
)

_STARTUP_WHY = "runs in every new shell"

_APPEND: tuple[Row, ...] = tuple(
    Row(pattern, Kind.APPEND, _STARTUP_WHY)
    for pattern in (
        "~/.bashrc",
        "~/.bash_profile",
        "~/.bash_login",
        "~/.bash_logout",
        "~/.bash_aliases",
        "~/.profile",
        "~/.zshrc",
        "~/.zshenv",
        "~/.zprofile",
        "~/.zlogin",
        "~/.zlogout",
        "~/.cshrc",
        "~/.tcshrc",
        "~/.kshrc",
        "~/.config/fish/config.fish",
    )
)

_REGISTRY_WHY = "registry settings tools need (index URLs, certificates); its credentials stay hidden"

_FILTERED: tuple[Row, ...] = tuple(
    Row(pattern, Kind.FILTERED, _REGISTRY_WHY)
    for pattern in ("~/.npmrc", "~/.config/pip/pip.conf", "~/.pip/pip.conf")
)

ROWS: tuple[Row, ...] = (*_PROTECTED, *_CREDENTIALS, *_READABLE, *_CACHES, *_APPEND, *_FILTERED)
"""Every row, in one place. `corral policy` prints the ones in force."""


def rows(kind: Kind) -> tuple[Row, ...]:
    return tuple(row for row in ROWS if row.kind is kind)


def patterns(kind: Kind) -> tuple[str, ...]:
    return tuple(row.pattern for row in ROWS if row.kind is kind)


def credential_why(target: str) -> str | None:
    """Why a path under some home matters, from the credential rows (`~/.config/gh` matches
    `/home/u/.config/gh/hosts.yml`); for display only."""
    padded = target.rstrip("/") + "/"
    for row in _CREDENTIALS:
        if "/" + row.pattern[2:] + "/" in padded:
            return row.why
    return None


ENV_ALLOW: tuple[str, ...] = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TERM",
    "COLORTERM",
    "NO_COLOR",
    "FORCE_COLOR",
    "CLICOLOR",
    "TZ",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "COLUMNS",
    "LINES",
    "VIRTUAL_ENV",
    "GOPATH",
    "GOROOT",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "JAVA_HOME",
    "NVM_DIR",
    "PYENV_ROOT",
    "PYENV_VERSION",
    "CI",
)
"""Environment variables passed into the sandbox (`*` matches any run of characters). Everything else is dropped."""

ENV_DENY: tuple[str, ...] = (
    "*TOKEN*",
    "*SECRET*",
    "*PASSWORD*",
    "*PASSWD*",
    "*CREDENTIAL*",
    "*_KEY",
    "*_KEY_*",
    "*APIKEY*",
    "*API_KEY*",
    "*PRIVATE*",
    "*SESSION*",
    "*COOKIE*",
    "AWS_*",
    "AZURE_*",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "SSH_AUTH_SOCK",
    "SSH_AGENT_PID",
    "GPG_AGENT_INFO",
    "DBUS_SESSION_BUS_ADDRESS",
    "DOCKER_HOST",
    "KUBECONFIG",
    "LD_*",
    "DYLD_*",
    "*_PROXY",
    "*_proxy",
)
"""Never passed, even when an allow pattern (or a trusted project) names them. Deny beats allow."""
