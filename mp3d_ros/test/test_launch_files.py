"""Checks of the launch files, package.xml and the RViz config (``launch``/``launch_ros`` are not
installable here, so the launch files are evaluated against a stand-in of their API).

Statically: each launch file parses, has a docstring naming its arguments, imports only the launch
API, names only executables that setup.py installs and files that its data_files install where the
launch file looks for them, and passes node parameters through ``params_file``.

Evaluated: each launch file runs against :class:`FakeLaunch`, a stand-in for the part of the
launch/launch_ros API the files use (Humble and later: class names at their real module paths,
constructor keywords as in the real signatures, so a misspelt keyword or class fails here),
which resolves launch arguments, conditions, groups, namespaces, includes and OpaqueFunctions
the way ``ros2 launch`` does and yields the processes it would start. For every mp3d node those
give: parameter files that apply to the node (their keys match its name and namespace), only
parameters the node declares (``mp3d_ros.pose_config.PARAMETERS``, ``mp3d_ros.recorder.
PARAMETERS``, plus ``use_sim_time``) with the declared type, remappings whose source is a topic
the node's code subscribes or publishes (read from its ``create_subscription`` and
``create_publisher`` calls), and so the final topic of every input and output. Other packages'
nodes and ``ros2`` verbs must be run dependencies in package.xml.

package.xml must declare every ROS package the code imports (module level and in functions) and
every third-party Python package, as a rosdep key or as pip-only in its comment. The RViz config
must show the markers and the image the demo publishes in the demo clip's frame.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.util
import math
import os
import re
import sys
import types
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from glob import glob
from pathlib import Path
from typing import Any

import pytest
import yaml
from mp3d.data import bags
from mp3d_ros.params import flatten
from rclpy.expand_topic_name import expand_topic_name
from rclpy.validate_full_topic_name import validate_full_topic_name
from rclpy.validate_namespace import validate_namespace
from rclpy.validate_node_name import validate_node_name

PKG = Path(__file__).resolve().parents[1]
REPO = PKG.parent
PACKAGE = "mp3d_ros"
LAUNCH_FILES = sorted((PKG / "launch").glob("*.launch.py"))
RVIZ = PKG / "rviz" / "mp3d.rviz"
DEMO_CLIP = PKG / "data" / "demo_clip"
# A file a launch file names: "<folder>/<name>" joined to the package's share directory.
SHARED_FILE = re.compile(r"^(config|rviz|launch)/[\w.-]+$")
ROS_BUILTIN_PARAMETERS = {"use_sim_time"}


def _setup_tree() -> ast.Module:
    return ast.parse((PKG / "setup.py").read_text())


def _setup_kwarg(name: str) -> ast.expr:
    for node in ast.walk(_setup_tree()):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup":
            for kw in node.keywords:
                if kw.arg == name:
                    return kw.value
    raise AssertionError(f"setup.py has no setup({name}=...)")


def entry_points() -> dict[str, str]:
    """Executable name -> "module:function" of setup.py's console_scripts."""
    scripts = ast.literal_eval(_setup_kwarg("entry_points"))["console_scripts"]
    return {line.split("=")[0].strip(): line.split("=")[1].strip() for line in scripts}


def console_scripts() -> set[str]:
    """Executable names of setup.py's console_scripts."""
    return set(entry_points())


def installed_files() -> dict[str, str]:
    """Source path (relative to the package) -> install folder, from setup.py's data_files.
    The entries are evaluated with glob() relative to the package and PACKAGE as in setup.py."""
    files: dict[str, str] = {}
    env = {"PACKAGE": PACKAGE, "glob": lambda pattern: sorted(
        str(Path(p).relative_to(PKG)) for p in glob(str(PKG / pattern)))}
    for entry in _setup_kwarg("data_files").elts:
        dest, sources = eval(compile(ast.Expression(entry), "setup.py", "eval"),
                             {"__builtins__": {}}, env)
        for src in sources:
            files[src] = dest
    return files


def yaml_parameters() -> set[str]:
    """Every parameter of config/*.yaml: leaf names and dotted names (tracker.max_age_s)."""
    names: set[str] = set()
    for path in (PKG / "config").glob("*.yaml"):
        for node in yaml.safe_load(path.read_text()).values():
            for dotted in flatten(node["ros__parameters"]):
                names.update({dotted, dotted.rsplit(".", 1)[-1]})
    return names


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and (getattr(n.func, "id", None) == name or getattr(n.func, "attr", None) == name)]


def _kwarg(call: ast.Call, name: str) -> ast.expr | None:
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def _strings(tree: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
            and isinstance(n.value, str)]


# The launch files' shared helpers (mp3d_ros.launch_nodes): what each call stands for.
NODE_ARGUMENTS = ("params_file", "use_sim_time")  # declared by node_arguments(), read by mp3d_node


def _named_files(tree: ast.AST) -> set[str]:
    """The package files a launch file names: "<folder>/<name>" strings, shared_file(folder,
    name) calls and node_arguments(config) (config/<config>)."""
    named = {s for s in _strings(tree) if SHARED_FILE.match(s)}
    named |= {f"{c.args[0].value}/{c.args[1].value}" for c in _calls(tree, "shared_file")}
    named |= {f"config/{c.args[0].value}" for c in _calls(tree, "node_arguments")}
    return named


def _declared_arguments(tree: ast.AST) -> list[str]:
    declared = [c.args[0].value for c in _calls(tree, "DeclareLaunchArgument")]
    return declared + (list(NODE_ARGUMENTS) if _calls(tree, "node_arguments") else [])


def _node_calls(tree: ast.AST) -> list[tuple[ast.expr, ast.expr]]:
    """(package, executable) of each node a launch file creates: Node/LifecycleNode calls and the
    helper mp3d_node(executable, ...) (package mp3d_ros)."""
    out = [(_kwarg(c, "package"), _kwarg(c, "executable"))
           for c in _calls(tree, "Node") + _calls(tree, "LifecycleNode")]
    return out + [(ast.Constant(PACKAGE), c.args[0]) for c in _calls(tree, "mp3d_node")]


# --------------------------------------------------------------------------- what the nodes are


def declared_parameters() -> dict[str, dict[str, object]]:
    """Executable -> {declared parameter: default} of the mp3d nodes a launch file may start."""
    from mp3d_ros import pose_config, recorder

    pose = {spec.name: spec.default for spec in pose_config.PARAMETERS}
    rec = {name: getattr(recorder.RecorderConfig(), name) for name in recorder.PARAMETERS}
    out = {"pose_node": pose, "mp3d_recorder": rec}
    if "pose_lifecycle_node" in console_scripts():
        out["pose_lifecycle_node"] = pose
    return out


def _module_file(module: str) -> Path:
    path = PKG / Path(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


@dataclass
class NodeCode:
    """What a node's source says: its default name and the topics it subscribes and publishes
    (each an AST expression, resolved per launch by :func:`node_topics`)."""

    executable: str
    default_name: str
    subscribed: list[ast.expr]
    published: list[ast.expr]


def node_code(executable: str) -> NodeCode:
    """Read the node behind an executable: its module and the mp3d_ros modules it imports,
    directly or through each other (the managed node reaches the ROS4HRI publishers through
    pose_node, as the plain node does)."""
    module = entry_points()[executable].split(":")[0]
    tree = ast.parse(_module_file(module).read_text())
    trees, todo, read = [tree], [tree], {module}
    while todo:
        for node in ast.walk(todo.pop()):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                    "mp3d_ros.") and node.level == 0 and node.module not in read \
                    and _module_file(node.module).is_file():
                read.add(node.module)
                trees.append(ast.parse(_module_file(node.module).read_text()))
                todo.append(trees[-1])
    names = [c.args[0].value for c in _calls(tree, "Node") + _calls(tree, "LifecycleNode")
             + _calls(tree, "__init__") if c.args and isinstance(c.args[0], ast.Constant)
             and isinstance(c.args[0].value, str)]
    assert names, f"{module}: no rclpy Node('<name>') found, cannot tell the node's name"
    subscribed, published = [], []
    for t in trees:
        for call in _calls(t, "create_subscription"):
            subscribed.append(call.args[1] if len(call.args) > 1 else _kwarg(call, "topic"))
        for call in _calls(t, "create_publisher"):
            published.append(call.args[1] if len(call.args) > 1 else _kwarg(call, "topic"))
    return NodeCode(executable, names[0], subscribed, published)


def _topic_names(expr: ast.expr, params: dict[str, object]) -> set[str]:
    """The topic names an expression can give: its string constants, and ``cfg.<parameter>``
    attributes resolved with the node's parameter values. An f-string is a name made at run
    time (the ROS4HRI per-body topics, /humans/bodies/<id>/...: absolute, one per body): none
    that a launch file could name."""
    if isinstance(expr, ast.JoinedStr):
        return set()
    found = {s for s in _strings(expr) if s}
    from_params = [params[n.attr] for n in ast.walk(expr)
                   if isinstance(n, ast.Attribute) and n.attr in params]
    found |= {v for v in from_params if isinstance(v, str) and v}  # "": that topic is off
    assert found or from_params, f"cannot tell the topic of {ast.unparse(expr)}"
    return found


# --------------------------------------------------------------------------- the launch stand-in


class LaunchError(Exception):
    """What ros2 launch would stop with."""


class FakeLaunch:
    """Stand-in modules for the launch/launch_ros API the launch files use (Humble and later).

    Only classes and keywords of the real API exist here; evaluating yields :class:`Process`
    records. Real semantics kept: launch configurations (DeclareLaunchArgument defaults, choices,
    required arguments), IfCondition/UnlessCondition ('true'/'false'/'1'/'0' only), scoped
    GroupAction, PushRosNamespace, IncludeLaunchDescription (not scoped, as in launch),
    OpaqueFunction (called with the context), ParameterValue typing with YAML rules.
    """

    def __init__(self, share: Path = PKG) -> None:
        self.share = share
        self.modules = self._build()

    # -- the API
    def _build(self) -> dict[str, types.ModuleType]:
        share = self.share

        class Substitution:
            def perform(self, context: Any) -> str:
                raise NotImplementedError

        class LaunchConfiguration(Substitution):
            def __init__(self, variable_name: str, *, default: Any = None) -> None:
                self.variable_name, self.default = variable_name, default

            def perform(self, context: Any) -> str:
                configs = context.launch_configurations
                if self.variable_name in configs:
                    return configs[self.variable_name]
                if self.default is not None:
                    return text(self.default, context)
                raise LaunchError(f"launch configuration {self.variable_name!r} does not exist")

        class TextSubstitution(Substitution):
            def __init__(self, *, text: str) -> None:
                self.text = text

            def perform(self, context: Any) -> str:
                return self.text

        class PythonExpression(Substitution):
            def __init__(self, expression: Any) -> None:
                self.expression = expression

            def perform(self, context: Any) -> str:
                return str(eval(text(self.expression, context), {}, vars(math)))

        def text(value: Any, context: Any) -> str:
            if isinstance(value, str):
                return value
            if isinstance(value, Substitution):
                return value.perform(context)
            if isinstance(value, (list, tuple)):
                return "".join(text(v, context) for v in value)
            raise LaunchError(f"not text or a substitution: {value!r}")

        def truth(value: str) -> bool:
            if value.lower() in ("true", "1"):
                return True
            if value.lower() in ("false", "0"):
                return False
            raise LaunchError(f"invalid condition expression {value!r}")

        class IfCondition:
            def __init__(self, predicate_expression: Any) -> None:
                self.expression = predicate_expression

            def evaluate(self, context: Any) -> bool:
                return truth(text(self.expression, context))

        class UnlessCondition(IfCondition):
            def evaluate(self, context: Any) -> bool:
                return not super().evaluate(context)

        class Action:
            def __init__(self, *, condition: Any = None) -> None:
                self.condition = condition

        class DeclareLaunchArgument(Action):
            def __init__(self, name: str, *, default_value: Any = None,
                         description: str | None = None, choices: list | None = None,
                         **kwargs: Any) -> None:
                super().__init__(**kwargs)
                if not isinstance(name, str) or not isinstance(description, (str, type(None))):
                    raise TypeError("DeclareLaunchArgument: name and description are text")
                if choices is not None and not choices:
                    raise RuntimeError("Provided choices arg is empty")
                self.name, self.default_value = name, default_value
                self.description, self.choices = description, choices

        class ExecuteProcess(Action):
            def __init__(self, *, cmd: list, prefix: Any = None, name: Any = None,
                         cwd: Any = None, env: Any = None, additional_env: Any = None,
                         shell: bool = False, sigterm_timeout: Any = None,
                         sigkill_timeout: Any = None, emulate_tty: bool = False,
                         output: Any = "log", output_format: Any = None,
                         cached_output: bool = False, log_cmd: bool = False,
                         on_exit: Any = None, respawn: Any = False, respawn_delay: Any = None,
                         **kwargs: Any) -> None:
                super().__init__(**kwargs)
                self.cmd, self.output = cmd, output

        class Node(ExecuteProcess):
            def __init__(self, *, executable: Any, package: Any = None, name: Any = None,
                         namespace: Any = None, exec_name: Any = None, parameters: Any = None,
                         remappings: Any = None, ros_arguments: Any = None,
                         arguments: Any = None, **kwargs: Any) -> None:
                if parameters is not None and not isinstance(parameters, list):
                    raise TypeError("Node: parameters must be a list")
                super().__init__(cmd=[executable], **kwargs)
                self.executable, self.package, self.name = executable, package, name
                self.namespace, self.parameters = namespace, parameters or []
                self.remappings = list(remappings or [])
                self.arguments = list(arguments or []) + (
                    ["--ros-args", *ros_arguments] if ros_arguments else [])

        class LifecycleNode(Node):
            def __init__(self, *, name: Any, namespace: Any, **kwargs: Any) -> None:
                super().__init__(name=name, namespace=namespace, **kwargs)

        class PushRosNamespace(Action):
            def __init__(self, namespace: Any, **kwargs: Any) -> None:
                super().__init__(**kwargs)
                self.namespace = namespace

        class GroupAction(Action):
            def __init__(self, actions: list, *, scoped: bool = True, forwarding: bool = True,
                         launch_configurations: dict | None = None, **kwargs: Any) -> None:
                super().__init__(**kwargs)
                self.actions, self.scoped, self.forwarding = list(actions), scoped, forwarding
                self.launch_configurations = launch_configurations or {}

        class OpaqueFunction(Action):
            def __init__(self, *, function: Any, args: Any = None, kwargs: Any = None,
                         **left_over_kwargs: Any) -> None:
                super().__init__(**left_over_kwargs)
                if not callable(function):
                    raise TypeError("OpaqueFunction expected a callable")
                self.function, self.args, self.kwargs = function, args or [], kwargs or {}

        class PythonLaunchDescriptionSource:
            def __init__(self, launch_file_path: Any) -> None:
                self.launch_file_path = launch_file_path

        class IncludeLaunchDescription(Action):
            def __init__(self, launch_description_source: Any, *, launch_arguments: Any = None,
                         **kwargs: Any) -> None:
                super().__init__(**kwargs)
                self.source = launch_description_source
                self.launch_arguments = list(launch_arguments or [])

        class LaunchDescription:
            def __init__(self, initial_entities: Any = None, *,
                         deprecated_reason: Any = None) -> None:
                self.entities = list(initial_entities or [])

        class ParameterValue:
            def __init__(self, value: Any, *, value_type: Any = None) -> None:
                self.value, self.value_type = value, value_type

        def get_package_share_directory(package_name: str, print_warning: bool = True) -> str:
            if package_name != PACKAGE:
                raise LaunchError(f"package {package_name!r} not found (only {PACKAGE} here)")
            return str(share)

        def module(name: str, **members: Any) -> types.ModuleType:
            mod = types.ModuleType(name)
            mod.__dict__.update(members)
            mod.__path__ = []  # a package, so that submodules import
            return mod

        defined = dict(locals())
        self.api = {k: v for k, v in defined.items() if isinstance(v, type)}
        self.text, self.truth = text, truth
        return {
            "launch": module("launch", LaunchDescription=LaunchDescription,
                             Substitution=Substitution),
            "launch.actions": module(
                "launch.actions", DeclareLaunchArgument=DeclareLaunchArgument,
                ExecuteProcess=ExecuteProcess, GroupAction=GroupAction,
                IncludeLaunchDescription=IncludeLaunchDescription,
                OpaqueFunction=OpaqueFunction),
            "launch.conditions": module("launch.conditions", IfCondition=IfCondition,
                                        UnlessCondition=UnlessCondition),
            "launch.substitutions": module(
                "launch.substitutions", LaunchConfiguration=LaunchConfiguration,
                PythonExpression=PythonExpression, TextSubstitution=TextSubstitution),
            "launch.launch_description_sources": module(
                "launch.launch_description_sources",
                PythonLaunchDescriptionSource=PythonLaunchDescriptionSource),
            "launch_ros": module("launch_ros"),
            "launch_ros.actions": module("launch_ros.actions", Node=Node,
                                         LifecycleNode=LifecycleNode,
                                         PushRosNamespace=PushRosNamespace),
            "launch_ros.parameter_descriptions": module(
                "launch_ros.parameter_descriptions", ParameterValue=ParameterValue),
            "ament_index_python": module("ament_index_python"),
            "ament_index_python.packages": module(
                "ament_index_python.packages",
                get_package_share_directory=get_package_share_directory),
        }

    # -- loading and evaluating
    @contextlib.contextmanager
    def installed(self):
        """The stand-in modules in sys.modules, as `launch` is importable during a real launch
        (for the launch file's imports and for OpaqueFunctions and helpers that import lazily)."""
        saved = {name: sys.modules.get(name) for name in self.modules}
        sys.modules.update(self.modules)
        try:
            yield
        finally:
            for name, mod in saved.items():
                if mod is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = mod

    def load(self, path: Path) -> Any:
        """The file's generate_launch_description(), imported with the stand-in modules."""
        with self.installed():
            spec = importlib.util.spec_from_file_location(f"launch_file_{path.stem}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module.generate_launch_description()

    def run(self, path: Path, **arguments: str) -> list[Process]:
        """What ``ros2 launch mp3d_ros <path> name:=value ...`` would start."""
        context = types.SimpleNamespace(launch_configurations=dict(arguments))
        out: list[Process] = []
        with self.installed():
            self._visit(self.load(path).entities, context, out)
        return out

    def _visit(self, entities: list, context: Any, out: list[Process]) -> None:
        api, text = self.api, self.text
        for e in entities:
            if getattr(e, "condition", None) is not None and not e.condition.evaluate(context):
                continue
            configs = context.launch_configurations
            if isinstance(e, api["DeclareLaunchArgument"]):
                if e.name not in configs:
                    if e.default_value is None:
                        raise LaunchError(f"required launch argument {e.name!r} not provided")
                    configs[e.name] = text(e.default_value, context)
                if e.choices is not None and configs[e.name] not in e.choices:
                    raise LaunchError(f"{e.name}:={configs[e.name]!r} not in {e.choices}")
            elif isinstance(e, api["GroupAction"]):
                inner = context
                if e.scoped:
                    inner = types.SimpleNamespace(
                        launch_configurations=dict(configs) if e.forwarding else {})
                for k, v in e.launch_configurations.items():
                    inner.launch_configurations[text(k, context)] = text(v, context)
                self._visit(e.actions, inner, out)
            elif isinstance(e, api["PushRosNamespace"]):
                configs["ros_namespace"] = _prefix_namespace(configs.get("ros_namespace"),
                                                             text(e.namespace, context))
                validate_namespace(configs["ros_namespace"])
            elif isinstance(e, api["OpaqueFunction"]):
                self._visit(list(e.function(context, *e.args, **e.kwargs) or []), context, out)
            elif isinstance(e, api["IncludeLaunchDescription"]):
                path = Path(text(e.source.launch_file_path, context))
                if not path.is_file():
                    raise LaunchError(f"included launch file {path} does not exist")
                for k, v in e.launch_arguments:
                    configs[text(k, context)] = text(v, context)
                self._visit(self.load(path).entities, context, out)
            elif isinstance(e, api["Node"]):
                out.append(self._node(e, context))
            elif isinstance(e, api["ExecuteProcess"]):
                out.append(Process(kind="process", cmd=[text(c, context) for c in e.cmd],
                                   output=text(e.output, context)))
            else:
                raise LaunchError(f"unknown launch entity {e!r}")

    def _node(self, e: Any, context: Any) -> Process:
        text = self.text
        name = text(e.name, context) if e.name is not None else None
        if name is not None:
            validate_node_name(name)
        ns = text(e.namespace, context) if e.namespace is not None else ""
        ns = _prefix_namespace(context.launch_configurations.get("ros_namespace"), ns)
        validate_namespace(ns)
        params: list[Any] = []
        for item in e.parameters:
            if isinstance(item, dict):
                params.append(self._param_dict(item, context))
            else:
                params.append(Path(text(item, context)))
        remaps = [(text(a, context), text(b, context)) for a, b in e.remappings]
        return Process(
            kind="lifecycle" if isinstance(e, self.api["LifecycleNode"]) else "node",
            package=text(e.package, context) if e.package is not None else None,
            executable=text(e.executable, context), name=name, namespace=ns, params=params,
            remaps=remaps, cmd=[text(a, context) for a in e.arguments],
            output=text(e.output, context))

    def _param_dict(self, d: dict, context: Any, prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in d.items():
            name = prefix + self.text(key, context)
            if isinstance(value, dict):
                out.update(self._param_dict(value, context, name + "."))
            elif isinstance(value, self.api["ParameterValue"]):
                parsed = yaml.safe_load(self.text(value.value, context))
                wanted = value.value_type
                if wanted is not None and not (isinstance(parsed, wanted) and (
                        wanted is bool or not isinstance(parsed, bool))):
                    raise LaunchError(f"parameter {name}: {parsed!r} is not a {wanted.__name__}")
                out[name] = parsed
            elif isinstance(value, (bool, int, float)) or (
                    isinstance(value, list) and all(isinstance(v, (bool, int, float, str))
                                                    for v in value)):
                out[name] = value
            else:  # text and substitutions: evaluated, then read as YAML
                out[name] = yaml.safe_load(self.text(value, context))
        return out


def _prefix_namespace(base: str | None, ns: str) -> str:
    """launch_ros' namespace rule: an absolute namespace stays, a relative one goes under the
    pushed ros_namespace (or the root)."""
    if ns.startswith("/"):
        full = ns
    elif not ns:
        full = base or "/"
    else:
        full = (base or "").rstrip("/") + "/" + ns
    return "/" + full.strip("/") if full.strip("/") else "/"


@dataclass
class Process:
    """One process a launch would start."""

    kind: str
    cmd: list[str] = field(default_factory=list)
    output: str = "log"
    package: str | None = None
    executable: str = ""
    name: str | None = None
    namespace: str = "/"
    params: list[Any] = field(default_factory=list)
    remaps: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class ResolvedNode:
    """An mp3d node as launched: name, parameters and where each of its topics ends up."""

    process: Process
    fqn: str
    parameters: dict[str, object]
    inputs: dict[str, str]  # the node's own topic name -> the topic it subscribes
    outputs: dict[str, str]  # the node's own topic name -> the topic it publishes


def _section_applies(key: str, fqn: str) -> bool:
    """Whether a parameter file's node key (``/**``, ``node``, ``/ns/node``, wildcards) applies to
    the node ``fqn``, as rcl matches them."""
    key = key if key.startswith("/") else "/" + key
    if key.startswith("/**"):
        return key == "/**" or fnmatchcase(fqn, "*" + key[3:])
    return fnmatchcase(fqn, key) and key.count("/") == fqn.count("/")


def resolve_node(p: Process) -> ResolvedNode:
    """Check and resolve one mp3d node: parameter files and values against what the node
    declares, remappings against the topics its code uses."""
    declared = declared_parameters()
    assert p.executable in declared, (
        f"{p.executable} is started by a launch file: add its declared parameters to "
        f"declared_parameters() in this test")
    code = node_code(p.executable)
    name = p.name or code.default_name
    fqn = p.namespace.rstrip("/") + "/" + name
    values = dict(declared[p.executable])
    for item in p.params:
        if isinstance(item, dict):
            given = item
        else:
            assert item.is_file(), f"{fqn}: parameter file {item} does not exist"
            doc = yaml.safe_load(item.read_text())
            keys = [k for k in doc if _section_applies(k, fqn)]
            assert keys, f"{fqn}: no section of {item} applies to it (keys: {list(doc)})"
            given = {}
            for k in keys:
                given.update(flatten(doc[k]["ros__parameters"]))
        for key, value in given.items():
            assert key in declared[p.executable] or key in ROS_BUILTIN_PARAMETERS, (
                f"{fqn}: parameter {key!r} is not declared by {p.executable}")
            default = declared[p.executable].get(key, False)
            assert type(value) is type(default), (
                f"{fqn}: parameter {key}={value!r} is a {type(value).__name__}, declared as "
                f"{type(default).__name__} (ROS parameters are typed)")
            values[key] = value
    inputs = {t: "" for e in code.subscribed for t in _topic_names(e, values)}
    outputs = {t: "" for e in code.published for t in _topic_names(e, values)}
    rules = []
    for src, dst in p.remaps:
        src_full = expand_topic_name(src, name, p.namespace)
        dst_full = expand_topic_name(dst, name, p.namespace)
        validate_full_topic_name(dst_full)
        used = {expand_topic_name(t, name, p.namespace) for t in [*inputs, *outputs]}
        assert src_full in used, (f"{fqn}: remapping {src}:={dst} names no topic of "
                                  f"{p.executable} (it uses {sorted(used)})")
        rules.append((src_full, dst_full))

    def final(topic: str) -> str:
        full = expand_topic_name(topic, name, p.namespace)
        return next((dst for src, dst in rules if src == full), full)

    return ResolvedNode(p, fqn, values, {t: final(t) for t in inputs},
                        {t: final(t) for t in outputs})


def launched(path: Path, **arguments: str) -> tuple[list[ResolvedNode], list[Process]]:
    """(the mp3d nodes, checked and resolved; every other process) of one launch."""
    procs = FakeLaunch().run(path, **arguments)
    ours, others = [], []
    for p in procs:
        assert p.output in ("screen", "log", "both", "own_log", "full"), p
        if p.kind != "process" and p.package == PACKAGE:
            assert p.executable in console_scripts(), (
                f"{path.name} runs {p.executable}, not in setup.py's console_scripts")
            if p.executable in declared_parameters():
                ours.append(resolve_node(p))
                continue
        assert not p.remaps, f"{path.name}: remappings on {p.executable}, whose topics are unknown"
        others.append(p)
    fqns = [n.fqn for n in ours]
    assert len(set(fqns)) == len(fqns), f"{path.name} starts two nodes named alike: {fqns}"
    return ours, others


# --------------------------------------------------------------------------- static checks


def test_launch_files_exist() -> None:
    assert [p.name for p in LAUNCH_FILES] == [
        "multi_camera.launch.py", "pose.launch.py", "record.launch.py", "replay.launch.py"]


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_parses_and_defines_generate_launch_description(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    doc = ast.get_docstring(tree)
    assert doc, f"{path.name} has no module docstring"
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert "generate_launch_description" in names
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree)
                 if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"os", "re", "launch", "launch_ros", "ament_index_python", "mp3d_ros"}, (
        imported)
    ours = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
            and n.module and n.module.startswith("mp3d_ros")}
    assert ours <= {"mp3d_ros.launch_nodes"}, ours
    assert f"ros2 launch {PACKAGE} {path.name}" in doc, "the docstring shows no usage line"
    declared = _declared_arguments(tree)
    missing = [a for a in declared if f"{a}:=" not in doc]
    assert not missing, f"{path.name}'s docstring does not show the arguments {missing}"
    used = {c.args[0].value for c in _calls(tree, "LaunchConfiguration")}
    used |= set(NODE_ARGUMENTS) if _calls(tree, "mp3d_node") else set()
    assert used <= set(declared), f"{path.name} reads undeclared arguments {used - set(declared)}"


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_executables_are_console_scripts(path: Path) -> None:
    tree = ast.parse(path.read_text())
    scripts = console_scripts()
    ours = []
    for package, executable in _node_calls(tree):
        assert isinstance(executable, ast.Constant), ast.unparse(executable)
        if isinstance(package, ast.Name) and package.id == "PACKAGE" or (
                isinstance(package, ast.Constant) and package.value == PACKAGE):
            ours.append(executable.value)
    missing = [e for e in ours if e not in scripts]
    assert not missing, f"{path.name} runs {missing}, not in setup.py's console_scripts"
    assert ours or _calls(tree, "IncludeLaunchDescription"), f"{path.name} starts no mp3d node"


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_named_files_exist_and_are_installed(path: Path) -> None:
    named = sorted(_named_files(ast.parse(path.read_text())))
    installed = installed_files()
    assert installed.get(f"launch/{path.name}") == f"share/{PACKAGE}/launch", (
        f"setup.py's data_files do not install {path.name}")
    for rel in named:
        assert (PKG / rel).is_file(), f"{path.name} names {rel}, missing in {PKG}"
        folder = rel.rsplit("/", 1)[0]
        assert installed.get(rel) == f"share/{PACKAGE}/{folder}", (
            f"{path.name} loads <share>/{rel}, but setup.py's data_files install it to "
            f"{installed.get(rel)}: add (f\"share/{{PACKAGE}}/{folder}\", "
            f"glob(\"{folder}/*{Path(rel).suffix}\")) to data_files")


def test_launch_files_name_their_configs() -> None:
    named = {p.name: _named_files(ast.parse(p.read_text())) for p in LAUNCH_FILES}
    assert named == {"multi_camera.launch.py": {"config/pose_node.yaml"},
                     "pose.launch.py": {"config/pose_node.yaml"},
                     "record.launch.py": {"config/recorder.yaml"},
                     "replay.launch.py": {"config/pose_node.yaml", "launch/pose.launch.py",
                                          "rviz/mp3d.rviz"}}


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_parameters_come_from_the_params_file(path: Path) -> None:
    tree = ast.parse(path.read_text())
    in_yaml = yaml_parameters()
    keys = {k.value for d in ast.walk(tree) if isinstance(d, ast.Dict)
            for k in d.keys if isinstance(k, ast.Constant)}
    overrides = {m.group(1) for s in _strings(tree) for m in [re.match(r"^([\w.]+):=", s)] if m}
    repeated = sorted((keys | overrides) & in_yaml - ROS_BUILTIN_PARAMETERS)
    assert not repeated, f"{path.name} repeats YAML parameters {repeated}: pass params_file"


REQUIRED_ARGUMENTS = {"replay.launch.py": {"bag": "/data/bag"},
                      "multi_camera.launch.py": {"cameras": "front,left"}}


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_every_mp3d_node_reads_the_params_file(path: Path, tmp_path: Path) -> None:
    required = REQUIRED_ARGUMENTS.get(path.name, {})
    variants = [{}, {"managed": "true"}] if path.name == "pose.launch.py" else [{}]
    for variant in variants:
        nodes, _ = launched(path, **required, **variant)
        assert nodes, f"{path.name} starts no mp3d node"
        for node in nodes:
            files = [p for p in node.process.params if isinstance(p, Path)]
            assert len(files) == 1 and files[0].parent == PKG / "config", (node.fqn, files)
        mine = tmp_path / files[0].name
        mine.write_text(files[0].read_text())
        nodes, _ = launched(path, **required, **variant, params_file=str(mine))
        for node in nodes:
            assert [p for p in node.process.params if isinstance(p, Path)] == [mine], node.fqn


# --------------------------------------------------------------------------- evaluated launches


def test_node_code_topics_are_the_documented_ones() -> None:
    """The topic reading itself: what pose_node.py subscribes and publishes."""
    values = declared_parameters()["pose_node"]
    code = node_code("pose_node")
    assert code.default_name == "pose_node"
    subscribed = {t for e in code.subscribed for t in _topic_names(e, values)}
    published = {t for e in code.published for t in _topic_names(e, values)}
    assert {"image", "image/compressed", "camera_info"} <= subscribed, subscribed
    assert {"people", "people/markers", "people/debug_image", "/diagnostics"} <= published


def _only(nodes: list[ResolvedNode]) -> ResolvedNode:
    assert len(nodes) == 1, [n.fqn for n in nodes]
    return nodes[0]


def test_pose_launch_defaults() -> None:
    nodes, others = launched(PKG / "launch" / "pose.launch.py")
    node = _only(nodes)
    assert not others
    assert node.fqn == "/pose_node"
    assert node.parameters["use_sim_time"] is False
    assert node.parameters["device"] == "auto"  # from config/pose_node.yaml
    assert {k: v for k, v in node.inputs.items() if k in ("image", "image/compressed",
                                                          "camera_info")} == {
        "image": "/image", "image/compressed": "/image/compressed",
        "camera_info": "/camera_info"}
    assert {node.outputs[t] for t in ("people", "people/markers", "people/debug_image",
                                      "/diagnostics")} == {
        "/people", "/people/markers", "/people/debug_image", "/diagnostics"}


def test_pose_launch_remaps_every_input_and_namespaces_outputs() -> None:
    nodes, _ = launched(PKG / "launch" / "pose.launch.py", image="/camera/color/image_raw",
                        camera_info="/camera/color/camera_info", namespace="cam",
                        use_sim_time="true")
    node = _only(nodes)
    assert node.fqn == "/cam/pose_node" and node.parameters["use_sim_time"] is True
    remapped = {src for src, _ in node.process.remaps}
    relative_inputs = {t for t in node.inputs if not t.startswith("/")}
    assert relative_inputs <= remapped, f"inputs without a launch argument: {relative_inputs}"
    assert node.inputs["image"] == "/camera/color/image_raw"
    assert node.inputs["image/compressed"] == "/camera/color/image_raw/compressed"
    assert node.inputs["camera_info"] == "/camera/color/camera_info"
    assert node.outputs["people"] == "/cam/people"
    assert node.outputs["people/markers"] == "/cam/people/markers"
    assert node.outputs["/diagnostics"] == "/diagnostics"
    with pytest.raises(LaunchError, match="not a bool"):
        launched(PKG / "launch" / "pose.launch.py", use_sim_time="yes please")


def test_pose_launch_managed_starts_the_lifecycle_node_alike() -> None:
    plain = _only(launched(PKG / "launch" / "pose.launch.py", namespace="cam")[0])
    managed = _only(launched(PKG / "launch" / "pose.launch.py", namespace="cam",
                             managed="true")[0])
    assert (plain.process.kind, plain.process.executable) == ("node", "pose_node")
    assert (managed.process.kind, managed.process.executable) == (
        "lifecycle", "pose_lifecycle_node")
    assert managed.fqn == plain.fqn == "/cam/pose_node"
    assert (managed.inputs, managed.outputs, managed.parameters) == (
        plain.inputs, plain.outputs, plain.parameters)
    with pytest.raises(LaunchError, match="not in"):
        launched(PKG / "launch" / "pose.launch.py", managed="yes")


def test_record_launch_remaps_the_recorders_topics() -> None:
    nodes, others = launched(PKG / "launch" / "record.launch.py",
                             image="/camera/color/image_raw/compressed",
                             camera_info="/camera/color/camera_info")
    node = _only(nodes)
    assert not others and node.fqn == "/mp3d_recorder"
    assert node.parameters["output_dir"] == "recordings"  # config/recorder.yaml applies
    assert node.inputs == {"image_raw": "/camera/color/image_raw/compressed",
                           "camera_info": "/camera/color/camera_info"}


def test_multi_camera_launch_one_namespaced_node_per_camera() -> None:
    nodes, others = launched(PKG / "launch" / "multi_camera.launch.py", cameras="front, left")
    assert not others
    assert [n.fqn for n in nodes] == ["/front/pose_node", "/left/pose_node"]
    for node, cam in zip(nodes, ("front", "left")):
        assert node.inputs["image"] == f"/{cam}/image"
        assert node.inputs["image/compressed"] == f"/{cam}/image/compressed"
        assert node.inputs["camera_info"] == f"/{cam}/camera_info"
        assert node.outputs["people"] == f"/{cam}/people"
        assert node.outputs["people/markers"] == f"/{cam}/people/markers"
        assert node.outputs["people/debug_image"] == f"/{cam}/people/debug_image"
        assert node.outputs["/diagnostics"] == "/diagnostics"
        assert node.parameters["use_sim_time"] is False
        relative_inputs = {t for t in node.inputs if not t.startswith("/")}
        assert relative_inputs <= {src for src, _ in node.process.remaps}
    # /humans/bodies/tracked: only with hri (off by default, and here), on one camera at most
    outputs = [set(n.outputs.values()) - {"/diagnostics", "/tf", "/humans/bodies/tracked"}
               for n in nodes]
    assert not outputs[0] & outputs[1], "two cameras publish on one topic"
    nodes, _ = launched(PKG / "launch" / "multi_camera.launch.py", cameras="front",
                        image="color/image_raw", camera_info="color/camera_info",
                        use_sim_time="true")
    node = _only(nodes)
    assert node.inputs["image"] == "/front/color/image_raw"
    assert node.inputs["camera_info"] == "/front/color/camera_info"
    assert node.parameters["use_sim_time"] is True


def test_multi_camera_topics_from_parameters_go_under_each_namespace(tmp_path: Path) -> None:
    params = yaml.safe_load((PKG / "config" / "pose_node.yaml").read_text())
    params["/**"]["ros__parameters"]["depth_topic"] = "aligned_depth/image_raw"
    path = tmp_path / "with_depth.yaml"
    path.write_text(yaml.safe_dump(params))
    nodes, _ = launched(PKG / "launch" / "multi_camera.launch.py", cameras="front,left",
                        params_file=str(path))
    assert [n.inputs["aligned_depth/image_raw"] for n in nodes] == [
        "/front/aligned_depth/image_raw", "/left/aligned_depth/image_raw"]


@pytest.mark.parametrize("arguments, message", [
    ({}, "required launch argument 'cameras'"),
    ({"cameras": " , "}, "at least one camera"),
    ({"cameras": "front,1st"}, "not namespace names"),
    ({"cameras": "front/left"}, "not namespace names"),
    ({"cameras": "front,left,front"}, "more than once"),
    ({"cameras": "front", "image": "/camera/image"}, "relative to the camera's namespace"),
])
def test_multi_camera_launch_refuses_bad_arguments(arguments: dict, message: str) -> None:
    with pytest.raises((LaunchError, ValueError), match=message):
        launched(PKG / "launch" / "multi_camera.launch.py", **arguments)


def test_replay_launch_plays_with_clock_and_sim_time() -> None:
    from mp3d_ros import player

    nodes, others = launched(PKG / "launch" / "replay.launch.py", bag="/data/bag")
    node = _only(nodes)
    assert node.parameters["use_sim_time"] is True and node.inputs["image"] == "/image"
    (play,) = [p for p in others if p.kind == "process"]
    assert play.cmd == ["ros2", "bag", "play", "/data/bag", "--clock", "--rate", "1.0"]
    (rviz,) = [p for p in others if p.kind == "node"]
    assert (rviz.package, rviz.executable) == ("rviz2", "rviz2")
    assert rviz.cmd == ["-d", str(RVIZ)] and rviz.params == [{"use_sim_time": True}]

    nodes, others = launched(PKG / "launch" / "replay.launch.py", bag="/data/bag",
                             player="mp3d", rviz="false", rate="2.0")
    (mp3d_player,) = others
    assert mp3d_player.executable == "mp3d_player" and mp3d_player.package == PACKAGE
    parser = argparse.ArgumentParser()
    player.add_arguments(parser)
    args = parser.parse_args(mp3d_player.cmd)  # what mp3d_player makes of its arguments
    assert (args.bag, args.rate, args.clock is not None) == ("/data/bag", 2.0, True)
    with pytest.raises(LaunchError, match="required launch argument 'bag'"):
        launched(PKG / "launch" / "replay.launch.py")
    with pytest.raises(LaunchError, match="invalid condition"):
        launched(PKG / "launch" / "replay.launch.py", bag="/data/bag", rviz="yes")


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_other_processes_are_run_dependencies(path: Path) -> None:
    required = REQUIRED_ARGUMENTS.get(path.name, {})
    deps = package_dependencies()["exec_depend"]
    variants = [{"player": "ros2"}, {"player": "mp3d"}] if path.name == "replay.launch.py" else [{}]
    for variant in variants:
        _, others = launched(path, **required, **variant)
        for p in others:
            if p.kind == "process" and p.cmd[0] == "ros2":
                verb = {"bag": "ros2bag", "launch": "ros2launch", "run": "ros2run"}[p.cmd[1]]
                assert verb in deps, f"{path.name} runs `ros2 {p.cmd[1]}`: exec_depend {verb}"
                if verb == "ros2bag":  # the project's bags are MCAP
                    assert "rosbag2_storage_mcap" in deps
            elif p.kind != "process" and p.package != PACKAGE:
                assert p.package in deps, f"{path.name} runs {p.package}: exec_depend it"


# --------------------------------------------------------------------------- package.xml

# Third-party Python modules -> rosdep key, or "pip:<PyPI name>" (no rosdep key).
PYTHON_DEPENDENCIES = {
    "numpy": "python3-numpy", "cv2": "python3-opencv", "yaml": "python3-yaml",
    "scipy": "python3-scipy", "tqdm": "python3-tqdm", "matplotlib": "python3-matplotlib",
    "torch": "pip:torch", "rosbags": "pip:rosbags", "mcap": "pip:mcap", "onnx": "pip:onnx",
    "onnxruntime": "pip:onnxruntime", "tomli": "pip:tomli", "mediapipe": "pip:mediapipe",
    "ray": "pip:ray",
}
# rosdep keys verified in rosdistro's rosdep/python.yaml (python3-torch is not one).
ROSDEP_PYTHON_KEYS = {"python3-numpy", "python3-opencv", "python3-yaml", "python3-scipy",
                      "python3-tqdm", "python3-matplotlib", "python3-pytest"}
# ROS packages imported from Python that are not installable here (not on AMENT_PREFIX_PATH).
ROS_PYTHON_PACKAGES = {"rclpy", "launch", "launch_ros", "ament_index_python", "rosidl_runtime_py",
                       "tf2_ros", "rosbag2_py", "cv_bridge", "message_filters",
                       "diagnostic_updater", "rcl_interfaces", "builtin_interfaces"}
OWN_MODULES = {"mp3d", "mp3d_ros", "mp3d_msgs"}


def package_dependencies() -> dict[str, set[str]]:
    """package.xml's dependencies by tag, and ``pip-only`` names from its comments."""
    text = (PKG / "package.xml").read_text()
    root = ET.fromstring(text)
    deps: dict[str, set[str]] = {}
    for tag in ("depend", "exec_depend", "test_depend", "build_depend"):
        deps[tag] = {e.text.strip() for e in root.iter(tag)}
    deps["exec_depend"] |= deps["depend"]
    deps["pip"] = {name for m in re.finditer(r"pip-only(?: for tests)?: ([\w\- ]+)", text)
                   for name in m.group(1).split()}
    return deps


def _is_ros_package(module: str) -> bool:
    if module in ROS_PYTHON_PACKAGES or re.search(r"_(msgs|srvs|interfaces)$", module):
        return True
    prefixes = os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)
    return any((Path(p) / "share" / module / "package.xml").is_file() for p in prefixes if p)


def _imports(paths: list[Path]) -> dict[str, set[str]]:
    """Top-level absolute imports (anywhere in the file, also inside functions) -> files."""
    found: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(REPO)))
    return found


CODE = sorted([*(PKG / "mp3d_ros").rglob("*.py"), *(PKG / "mp3d").rglob("*.py"), *LAUNCH_FILES])


def test_package_xml_declares_every_ros_package_the_code_imports() -> None:
    deps = package_dependencies()
    missing = {m: sorted(files)[:3] for m, files in _imports(CODE).items()
               if m not in OWN_MODULES and m not in sys.stdlib_module_names
               and _is_ros_package(m) and m not in deps["exec_depend"]}
    assert not missing, f"package.xml lacks <exec_depend> for {missing}"
    tests = sorted((PKG / "test").glob("*.py"))
    missing = {m: sorted(files)[:3] for m, files in _imports(tests).items()
               if m not in OWN_MODULES and m not in sys.stdlib_module_names
               and _is_ros_package(m) and m not in deps["exec_depend"] | deps["test_depend"]}
    assert not missing, f"package.xml lacks <test_depend> for {missing}"


def test_package_xml_declares_every_python_package_the_code_imports() -> None:
    deps = package_dependencies()
    imports = _imports(CODE)
    unknown = sorted(m for m in imports if m not in OWN_MODULES | set(PYTHON_DEPENDENCIES)
                     and m not in sys.stdlib_module_names and not _is_ros_package(m))
    assert not unknown, (f"imports of {unknown} ({[sorted(imports[m])[0] for m in unknown]}): add "
                         f"each to PYTHON_DEPENDENCIES (rosdep key or pip:) and to package.xml")
    for module in imports:
        key = PYTHON_DEPENDENCIES.get(module)
        if key and key.startswith("pip:"):
            assert key[4:] in deps["pip"], f"{module}: list {key[4:]} as pip-only in package.xml"
        elif key:
            assert key in deps["exec_depend"], f"{module}: package.xml lacks <exec_depend>{key}"


def test_package_xml_uses_only_valid_rosdep_keys() -> None:
    deps = package_dependencies()
    python_keys = {d for tag in ("exec_depend", "test_depend") for d in deps[tag]
                   if d.startswith("python3-")}
    assert python_keys <= ROSDEP_PYTHON_KEYS, python_keys - ROSDEP_PYTHON_KEYS
    assert {"launch", "launch_ros", "rviz2", "tf2_msgs", "lifecycle_msgs",
            "rosgraph_msgs"} <= deps["exec_depend"]
    assert "mcap-ros2-support" in deps["pip"]  # test_foxglove_mcap.py decodes with it


# --------------------------------------------------------------------------- RViz


def _displays(config: dict) -> list[dict]:
    return config["Visualization Manager"]["Displays"]


def _demo_clip_frames_and_image_topic() -> tuple[set[str], str]:

    frames, image_topic = set(), None
    for topic, msgtype, _, msg in bags.read_messages(DEMO_CLIP):
        frames.add(msg.header.frame_id)
        if msgtype in ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage"):
            image_topic = topic
    return frames, image_topic


def test_rviz_config_shows_what_the_demo_publishes_in_its_frame() -> None:
    config = yaml.safe_load(RVIZ.read_text())
    manager = config["Visualization Manager"]
    frames, image_topic = _demo_clip_frames_and_image_topic()
    assert frames == {manager["Global Options"]["Fixed Frame"]}, frames
    by_class: dict[str, list[dict]] = {}
    for d in _displays(config):
        by_class.setdefault(d["Class"], []).append(d)
    node = _only(launched(PKG / "launch" / "pose.launch.py")[0])  # the demo's topics
    markers = by_class["rviz_default_plugins/MarkerArray"]
    assert [m["Topic"]["Value"] for m in markers] == [node.outputs["people/markers"]]
    assert markers[0]["Enabled"] is True
    images = {d["Topic"]["Value"]: d for d in by_class["rviz_default_plugins/Image"]}
    assert node.outputs["people/debug_image"] in images
    # RViz2's Image display takes "<base>/compressed" as the compressed transport of <base>.
    assert image_topic in images and images[image_topic]["Enabled"] is True, images
    assert images[image_topic]["Topic"]["Reliability Policy"] == "Best Effort"
    (tf,) = by_class["rviz_default_plugins/TF"]  # body_<id> frames under the camera frame
    assert tf["Enabled"] is True and tf["Frames"]["All Enabled"] is True
    assert "/tf" in node.outputs
    assert by_class["rviz_default_plugins/Grid"]


def test_rviz_view_looks_from_behind_the_camera() -> None:
    """Orbit view in the optical frame (x right, y down, z forward): the eye is behind the camera
    (z < 0) and above it (y < 0), looking at a point in front (z > 0)."""
    view = yaml.safe_load(RVIZ.read_text())["Visualization Manager"]["Views"]["Current"]
    assert view["Class"] == "rviz_default_plugins/Orbit"
    focal = view["Focal Point"]
    yaw, pitch, dist = float(view["Yaw"]), float(view["Pitch"]), float(view["Distance"])
    eye = (focal["X"] + dist * math.cos(yaw) * math.cos(pitch),
           focal["Y"] + dist * math.sin(yaw) * math.cos(pitch),
           focal["Z"] + dist * math.sin(pitch))
    assert focal["Z"] > 0 and eye[2] < 0 and eye[1] < 0 and abs(eye[0]) < 0.1, eye
