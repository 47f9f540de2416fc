"""JupyterHub's configuration for the course server (`course serve`); the settings of one server come from
the JSON file that COURSE_HUB_SETTINGS names (autograder/server/hub.py writes it)."""

import json
import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821  (JupyterHub injects get_config)
settings = json.loads(Path(os.environ["COURSE_HUB_SETTINGS"]).read_text())
state = Path(settings["state_dir"])

c.JupyterHub.bind_url = f"http://{settings['ip']}:{settings['port']}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{settings['hub_port']}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings['proxy_api_port']}"
c.ConfigurableHTTPProxy.command = [settings["proxy"]]
c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "cookie_secret")
c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True

# Real Linux accounts, checked by PAM; only the roster and the instructor may log in.
c.JupyterHub.authenticator_class = "pam"
c.PAMAuthenticator.open_sessions = False
c.Authenticator.allowed_users = set(settings["students"]) | {settings["instructor"]}
c.Authenticator.admin_users = {settings["instructor"]}

c.JupyterHub.spawner_class = "autograder.server.spawner.SandboxedSpawner"
c.SandboxedSpawner.exchange = settings["exchange"]
c.SandboxedSpawner.course_root = settings["course_root"]
c.SandboxedSpawner.instructor = settings["instructor"]
c.SandboxedSpawner.student_config = settings["student_config"]
c.SandboxedSpawner.instructor_config = settings["instructor_config"]
c.SandboxedSpawner.singleuser = settings["singleuser"]
c.SandboxedSpawner.process_memory_bytes = settings["process_memory_bytes"]
c.SandboxedSpawner.user_processes = settings["user_processes"]
c.Spawner.default_url = "/lab"
# The role's configuration is mounted at /etc/jupyter, read-only: ahead of the virtualenv's own (which turns
# every nbgrader extension on), behind the user's ~/.jupyter (where Jupyter and nbgrader write their state).
c.Spawner.environment = {"JUPYTER_CONFIG_PATH": "/etc/jupyter"}
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120

# Servers left idle are stopped (their files stay; the next login starts a new one): with 300 students,
# the kernels of those who went to bed would otherwise hold the machine's memory. Activity is a browser
# tab talking to the server or a kernel running, reported to the hub by the server and the proxy.
idle = settings["idle_timeout_s"]
if idle:
    every = max(5, min(300, idle // 4))  # how often the hub hears of activity, and the culler looks
    c.JupyterHub.last_activity_interval = every
    c.Spawner.environment["JUPYTERHUB_ACTIVITY_INTERVAL"] = str(every)
    c.JupyterHub.services = [{
        "name": "idle-culler",
        "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={idle}", f"--cull-every={every}"],
    }]
    c.JupyterHub.load_roles = [{
        "name": "idle-culler",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["idle-culler"],
    }]
