"""The default boundary: credential paths, protected names, tool-chain caches, the environment allow-list.

Every list here is data, not code, so `corral policy` can print it and tests can check it.
Paths starting with `~/` are relative to the user's home.
"""

from __future__ import annotations

CREDENTIAL_PATHS: tuple[str, ...] = (
    "~/.ssh",
    "~/.aws",
    "~/.gnupg",
    "~/.netrc",
    "~/.git-credentials",
    "~/.config/git/credentials",
    "~/.config/gh",
    "~/.config/hub",
    "~/.config/gcloud",
    "~/.azure",
    "~/.kube",
    "~/.docker/config.json",
    "~/.npmrc",
    "~/.yarnrc",
    "~/.pypirc",
    "~/.config/pip",
    "~/.cargo/credentials",
    "~/.cargo/credentials.toml",
    "~/.gem/credentials",
    "~/.terraform.d/credentials.tfrc.json",
    "~/.vault-token",
    "~/.password-store",
    "~/.local/share/keyrings",
    "~/.config/op",
    "~/.mozilla",
    "~/.config/google-chrome",
    "~/.config/chromium",
    "~/.config/BraveSoftware",
    # other agents' config and tokens
    "~/.claude",
    "~/.claude.json",
    "~/.codex",
    "~/.gemini",
    "~/.config/github-copilot",
    "~/.cursor",
    "~/.aider.conf.yml",
    "~/.config/openai",
    # shell histories often hold pasted secrets
    "~/.bash_history",
    "~/.zsh_history",
    "~/.python_history",
    "~/.psql_history",
    "~/.mysql_history",
    "~/.lesshst",
)
"""Unreadable inside the sandbox. A read attempt is reported as an `fs-read` violation."""

PROTECTED_SUBTREES: tuple[str, ...] = (
    ".git/hooks",
    # Submodule git dirs, whole: a name is the submodule path (`libs/x`, any number of components) and
    # submodules nest (`modules/a/modules/b`), so `.git/modules/*/hooks` missed most of them.
    ".git/modules",
    ".git/info",
    ".corral",
    ".claude",
    ".codex",
    ".gemini",
    ".cursor",
    ".vscode",
    ".idea",
    ".husky",
    ".devcontainer",
    ".agents",
    ".continue",
    ".windsurf",
    ".zed",  # language-server binaries and tasks the editor runs when it opens the project
    ".helix",  # language-server commands
    ".kiro",  # agent hooks that run shell commands
    ".roo",  # project MCP servers
    ".opencode",
    ".lefthook",  # git-hook scripts run by lefthook at the next commit
    ".git-hooks",  # overcommit's repository hooks
)
"""Directories (at any depth of the workspace) whose content runs later outside the sandbox."""

PROTECTED_FILES: tuple[str, ...] = (
    ".git",
    ".git/config",
    ".git/config.worktree",
    ".git/commondir",
    ".git/modules/*/config",
    ".git/worktrees/*/config*",
    ".git/worktrees/*/commondir",
    ".git/worktrees/*/gitdir",
    ".gitmodules",
    ".envrc",
    ".mcp.json",
    ".pre-commit-config.yaml",
    "lefthook*.*",  # lefthook.yml, lefthook-local.yml, ...: commands run by the git hooks lefthook installed
    ".lefthook*.*",
    ".overcommit.yml",
    "opencode.json*",  # MCP servers (local commands) started by the agent
    ".aider.conf.yml",  # lint-cmd / test-cmd run by aider after its edits
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
    ".npmrc",
    ".yarnrc",
    ".yarnrc.yml",
    ".pnpmfile.cjs",
    "bunfig.toml",
    ".tool-versions",
    "mise.toml",
    ".mise.toml",
    "gradle/wrapper/gradle-wrapper.properties",
    ".venv/pyvenv.cfg",
    ".venv/bin/python*",
    ".venv/bin/activate*",
)
"""Single paths (at any depth) that hosts tools run or load outside the sandbox."""

CACHE_DIRS: tuple[str, ...] = (
    "~/.cache",
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
)
"""Tool-chain caches: writable without prompting through a per-project layer corral owns; never
written back to the host."""

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

EXTRA_CAPTURE_ROOTS: tuple[str, ...] = (
    "/etc",
    "/opt",
    "/srv",
    "/usr/local",
    "/var",
    "/root",
    "/home",
    "/mnt",
    "/media",
)
"""Outside the home and the workspace, directories whose writes are captured and reported rather than
failing with EROFS (they matter for a root caller; for a normal user most are not writable anyway)."""
