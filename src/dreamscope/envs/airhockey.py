"""Air hockey on MuJoCo: the sparse-reward 4-D continuous-control task dreamscope studies.

The table is planar (no gravity): every body moves on slide joints in the x–y plane, so the
physics is cheap enough for >10k env steps/s in one process. Frames are drawn with PIL, so
rendering needs no OpenGL.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces
from PIL import Image, ImageDraw

from dreamscope.errors import DreamscopeError

# --- Geometry (metres). The agent defends the goal at x = -L and attacks the one at x = +L.
L = 1.0  # table half-length (inner face of the end walls)
W = 0.5  # table half-width (inner face of the side walls)
GOAL = 0.15  # goal-mouth half-width
WALL = 0.05  # wall thickness as drawn
WALL_DEPTH = 0.2  # wall thickness in the physics: a puck at 8 m/s sinks ~3.6 cm into a wall
PUCK_R = 0.04
PADDLE_HALF = 0.08  # half-length of the paddle capsule's axis
PADDLE_R = 0.025
# Paddle centres keep this far from the centre line and the walls, so the whole capsule stays
# on its own half at any angle; the 2 cm on top absorbs the soft joint limit's overshoot.
LIMIT_MARGIN = PADDLE_HALF + PADDLE_R + 0.02

# --- Dynamics.
TIMESTEP = 0.005  # physics step (s)
FRAME_SKIP = 8  # physics steps per env step: 25 Hz control, 250 steps = 10 s of play
FORCE = 10.0  # N at |action| = 1; with damping 4 N·s/m a 1 kg paddle tops out at 2.5 m/s
TORQUE = 0.2  # N·m at |action| = 1; with damping 0.02 N·m·s a paddle spins up to 10 rad/s
PUCK_DAMPING = 0.02  # N·s/m on a 0.1 kg puck: speed halves in ~3.5 s (air-cushion drag)
# Contacts use MuJoCo's direct (stiffness, damping) form: restitution 0.81-0.98 (typically
# 0.86) from 0.3 to 8 m/s, penetration ~2.7 cm at 6 m/s. The damping term makes every bounce
# lose energy. (MuJoCo's default (timeconst, dampratio) form cannot be made bouncy: a lower
# dampratio raises the stiffness instead, which goes unstable at this timestep.)
CONTACT_SOLREF = "-40000 -20"

# --- Strike and hold (counted in env steps).
STRIKE_SPEED = 2.5  # m/s added to the puck along the paddle-to-puck normal
STRIKE_SLACK = 0.03  # a strike reaches this far beyond touching
STRIKE_COOLDOWN = 10
HOLD_STEPS = 25  # keep_mode: a held puck is released by itself after 1 s
REGRAB_COOLDOWN = 10  # keep_mode: steps after a release before the paddle can grab again

GOAL_REWARD = 10.0
# Dense shaping (see the class docstring): potential-based progress plus a proximity cost.
PROGRESS_SCALE = 0.5  # reward per metre the puck moves towards the opponent's goal
PROXIMITY_SCALE = 0.005  # cost per metre between the agent's paddle and the puck, per step

OPPONENTS = ("idle", "defender", "attacker")
REWARDS = ("sparse", "dense")
OBS_SIZE = 22  # with the goal flag (v1); 21 without it (v0)
#: Names of the observation entries, in order (the class docstring gives their units).
OBS_LABELS = ("paddle x", "paddle y", "paddle cos", "paddle sin", "paddle vx", "paddle vy", "paddle spin",
              "opponent x", "opponent y", "opponent cos", "opponent sin", "opponent vx", "opponent vy",
              "opponent spin", "puck x", "puck y", "puck vx", "puck vy", "time left", "cooldown", "hold", "goal")


def _mjcf() -> str:
    """The model, generated from the constants above so rendering and physics agree."""
    side = f"{L + WALL_DEPTH} {WALL_DEPTH / 2} 0.05"
    post = f"{WALL_DEPTH / 2} {(W - GOAL) / 2} 0.05"
    post_x, post_y = L + WALL_DEPTH / 2, (W + GOAL) / 2

    def paddle(name: str, x_lo: float, x_hi: float) -> str:
        limit = 'limited="true" solreflimit="0.01 1" damping="4"'
        return f"""
    <body name="{name}">
      <joint name="{name}_x" type="slide" axis="1 0 0" range="{x_lo} {x_hi}" {limit}/>
      <joint name="{name}_y" type="slide" axis="0 1 0" range="{-W + LIMIT_MARGIN} {W - LIMIT_MARGIN}" {limit}/>
      <joint name="{name}_rot" type="hinge" axis="0 0 1" damping="0.02" armature="0.002"/>
      <geom type="capsule" fromto="0 {-PADDLE_HALF} 0 0 {PADDLE_HALF} 0" size="{PADDLE_R}" mass="1" contype="2"/>
    </body>"""

    def motors(name: str) -> str:
        return (f'<motor joint="{name}_x" gear="{FORCE}" ctrlrange="-1 1"/>'
                f'<motor joint="{name}_y" gear="{FORCE}" ctrlrange="-1 1"/>'
                f'<motor joint="{name}_rot" gear="{TORQUE}" ctrlrange="-1 1"/>')

    # Collision bits: walls and paddles have contype 2, the puck conaffinity 2 -> only
    # puck-wall and puck-paddle contacts exist; paddles are held on the table by joint limits.
    return f"""
<mujoco model="airhockey">
  <compiler angle="radian"/>
  <option timestep="{TIMESTEP}" gravity="0 0 0" integrator="Euler"/>
  <default>
    <geom condim="1" contype="0" conaffinity="0" solref="{CONTACT_SOLREF}"/>
    <default class="wall"><geom type="box" contype="2"/></default>
  </default>
  <worldbody>
    <geom class="wall" size="{side}" pos="0 {W + WALL_DEPTH / 2} 0"/>
    <geom class="wall" size="{side}" pos="0 {-W - WALL_DEPTH / 2} 0"/>
    <geom class="wall" size="{post}" pos="{post_x} {post_y} 0"/>
    <geom class="wall" size="{post}" pos="{post_x} {-post_y} 0"/>
    <geom class="wall" size="{post}" pos="{-post_x} {post_y} 0"/>
    <geom class="wall" size="{post}" pos="{-post_x} {-post_y} 0"/>
    {paddle("agent", -L + LIMIT_MARGIN, -LIMIT_MARGIN)}
    {paddle("opponent", LIMIT_MARGIN, L - LIMIT_MARGIN)}
    <body name="puck">
      <joint name="puck_x" type="slide" axis="1 0 0" damping="{PUCK_DAMPING}"/>
      <joint name="puck_y" type="slide" axis="0 1 0" damping="{PUCK_DAMPING}"/>
      <geom type="sphere" size="{PUCK_R}" mass="0.1" conaffinity="2"/>
    </body>
  </worldbody>
  <actuator>{motors("agent")}{motors("opponent")}</actuator>
  <equality><connect name="hold" body1="agent" body2="puck" anchor="0 0 0" active="false"/></equality>
</mujoco>"""


def _clip1(v: float) -> float:
    return -1.0 if v < -1.0 else (1.0 if v > 1.0 else v)


def _wrap_half_turn(angle: float) -> float:
    """Angle error for a paddle that looks the same after a half turn: into [-pi/2, pi/2)."""
    return (angle + math.pi / 2) % math.pi - math.pi / 2


def _paddle_contact(x: float, y: float, angle: float, px: float, py: float) -> tuple[float, float, float, float, float]:
    """Distance from the puck centre to the paddle's axis segment, the unit normal pointing
    from the paddle to the puck, and the nearest axis point (qx, qy)."""
    ux, uy = -math.sin(angle), math.cos(angle)  # the capsule lies along its local y axis
    t = (px - x) * ux + (py - y) * uy
    t = -PADDLE_HALF if t < -PADDLE_HALF else (PADDLE_HALF if t > PADDLE_HALF else t)
    qx, qy = x + t * ux, y + t * uy
    dx, dy = px - qx, py - qy
    dist = math.hypot(dx, dy)
    if dist < 1e-9:  # puck centre on the axis: push along the paddle's face normal
        return 0.0, uy, -ux, qx, qy
    return dist, dx / dist, dy / dist, qx, qy


def _steer(x, y, angle, vx, vy, omega, tx, ty, t_angle) -> tuple[float, float, float]:
    """PD controller, in action units, that drives a paddle to a target pose."""
    return (_clip1(10.0 * (tx - x) - 2.0 * vx),
            _clip1(10.0 * (ty - y) - 2.0 * vy),
            _clip1(4.0 * _wrap_half_turn(t_angle - angle) - 0.4 * omega))


def _attack(x, y, angle, vx, vy, omega, px, py, goal_x) -> tuple[float, float, float, float]:
    """Scripted striker: get behind the puck on the line to the goal at (goal_x, 0), face
    that line, charge through the puck and shoot when it is in reach and the shot is aimed."""
    dx, dy = goal_x - px, -py
    norm = math.hypot(dx, dy)
    dx, dy = dx / norm, dy / norm
    standoff = PUCK_R + PADDLE_R + 0.02
    behind = (x - px) * dx + (y - py) * dy < -0.5 * standoff
    reach = 0.1 if behind else -2.0 * standoff
    fx, fy, torque = _steer(x, y, angle, vx, vy, omega, px + reach * dx, py + reach * dy, math.atan2(dy, dx))
    dist, nx, ny, _, _ = _paddle_contact(x, y, angle, px, py)
    aimed = dist < PADDLE_R + PUCK_R + STRIKE_SLACK and nx * dx + ny * dy > 0.6
    return fx, fy, torque, 1.0 if aimed else -1.0


def chase_policy(obs: np.ndarray) -> np.ndarray:
    """A hand-written baseline for the agent: drive at the puck and shoot at the goal."""
    x, y, c, s, vx, vy, omega = obs[0:7].tolist()
    px, py = obs[14:16].tolist()
    return np.array(_attack(x, y, math.atan2(s, c), vx, vy, omega, px, py, L), dtype=np.float32)


class AirHockeyEnv(gym.Env):
    """Air hockey against a scripted opponent; the agent always plays the left half (x < 0).

    Constructor: ``AirHockeyEnv(opponent="defender", reward="sparse", keep_mode=False,
    render_mode=None, max_steps=250)``; ``opponent`` in ``("idle", "defender", "attacker")``,
    ``reward`` in ``("sparse", "dense")``, ``render_mode`` None or ``"rgb_array"``.

    Table: 2 m x 1 m (x in [-1, 1], y in [-0.5, 0.5]), goal mouths |y| < 0.15 at x = +-1. A goal
    counts when the puck's centre crosses an end line inside the mouth.

    Action, Box(-1, 1, (4,), float32); values outside [-1, 1] are clipped, NaN/inf raise
    DreamscopeError:
        0 force x on the agent's paddle (+-10 N), 1 force y (+-10 N), 2 torque (+-0.2 N·m),
        3 shoot: > 0.5 fires. Without keep_mode it adds 2.5 m/s to the puck along the
        paddle-to-puck normal when the puck is within 3 cm of the paddle, then the strike
        recharges for 10 steps (a miss also uses it). With keep_mode the paddle grabs the puck
        on touch and holds it for up to 25 steps; shoot releases it with the same strike (and
        does nothing while not holding). A released puck cannot be re-grabbed for 10 steps.
        The opponent strikes the same way (never holds).

    Observation, float32 (22,), world frame, metres, m/s, rad/s:
        0-1 agent paddle x, y      2-3 its cos, sin of angle   4-5 its vx, vy   6 its angular vel
        7-8 opponent paddle x, y   9-10 its cos, sin of angle  11-12 its vx, vy 13 its angular vel
        14-15 puck x, y            16-17 puck vx, vy
        18 time left, 1 at reset falling to 0 at the last step
        19 agent cooldown left as a fraction (strike; re-grab in keep_mode)
        20 hold time used as a fraction (0 when not holding)
        21 goal: 1 / -1 on the step the agent scores / concedes, else 0. Without it the goal
           row differs from the one before only in puck x (1.00-1.05 against at most 0.9994),
           and a world model's continue head does not learn where goals end episodes.
           ``goal_flag=False`` (the v0 ids) leaves it out: 21 values, as recorded before it.
    Angle 0 means the paddle's long axis lies along y, facing the goals.

    Reward: +10 when the agent scores, -10 when it concedes, else 0. ``reward="dense"`` adds
    0.5 x (metres the puck moved towards +x this step) -- a potential difference, so an episode's
    sum is 0.5 x the puck's net travel, under 1 in size -- and -0.005 x (paddle-puck distance in
    m) per step, at most 0.011 per step. An episode terminates on a goal and is truncated
    after ``max_steps`` steps; ``info["win"]`` is 1 / -1 on the scoring step, else 0.

    Physics: frictionless planar contacts with restitution 0.81-0.98 (typically 0.86), so a bounce
    never adds kinetic energy; the puck's drag halves its speed in ~3.5 s (kinetic energy decays
    at 0.4/s between bounces). Pucks reach ~7.5 m/s in play. Paddles are held on their own half by
    joint limits. Starts are drawn from the ``reset`` seed; equal seeds and actions give
    bitwise-equal trajectories.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": round(1 / (TIMESTEP * FRAME_SKIP))}

    def __init__(self, opponent: str = "defender", reward: str = "sparse", keep_mode: bool = False,
                 render_mode: str | None = None, max_steps: int = 250, goal_flag: bool = True):
        if opponent not in OPPONENTS:
            raise DreamscopeError(f"unknown opponent {opponent!r}; accepted: {', '.join(OPPONENTS)}")
        if reward not in REWARDS:
            raise DreamscopeError(f"unknown reward {reward!r}; accepted: {', '.join(REWARDS)}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise DreamscopeError(f"unknown render_mode {render_mode!r}; accepted: None, 'rgb_array'")
        if not isinstance(max_steps, int) or max_steps < 1:
            raise DreamscopeError(f"max_steps must be a positive integer, got {max_steps!r}")
        self.opponent, self.reward_mode, self.keep_mode = opponent, reward, bool(keep_mode)
        self.render_mode, self.max_steps = render_mode, max_steps
        obs_size = OBS_SIZE if goal_flag else OBS_SIZE - 1
        self.action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.observation_space = spaces.Box(-np.inf, np.inf, (obs_size,), np.float32)
        self.observation_labels = OBS_LABELS[:obs_size]

        self.model = mujoco.MjModel.from_xml_string(_mjcf())
        self.data = mujoco.MjData(self.model)
        # Joint order is fixed by the MJCF: agent x, y, rot, opponent x, y, rot, puck x, y.
        self._qpos, self._qvel, self._ctrl = self.data.qpos, self.data.qvel, self.data.ctrl
        self._hold_anchor = self.model.eq_data[0]
        self._obs = np.zeros(OBS_SIZE, np.float32)
        self._action = np.zeros(4)
        self._background: Image.Image | None = None
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._steps = 0
        self._cooldown = 0  # agent: strike recharge, or re-grab wait in keep_mode
        self._opp_cooldown = 0
        self._holding = False  # keep_mode: the hold constraint is on
        self._held = 0  # steps the puck has been held so far
        self._goal = 0  # observed: 1 / -1 on the scoring step

    # --- Gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        mujoco.mj_resetData(self.model, self.data)
        self._reset_counters()
        # The agent serves: the puck starts slow on its half, ahead of its paddle.
        u = self.np_random.uniform
        heading = u(-math.pi, math.pi)
        speed = u(0.0, 0.1)
        self._qpos[:] = (u(-0.85, -0.5), u(-0.3, 0.3), u(-math.pi / 2, math.pi / 2),
                         u(0.5, 0.85), u(-0.3, 0.3), u(-math.pi / 2, math.pi / 2),
                         u(-0.3, -0.1), u(-0.3, 0.3))
        self._qvel[6:8] = speed * math.cos(heading), speed * math.sin(heading)
        mujoco.mj_forward(self.model, self.data)
        return self._observe(), {"win": 0}

    def step(self, action):
        shoot = self._set_agent_controls(action)
        qpos = self._qpos.tolist()
        qvel = self._qvel.tolist()
        self._agent_shoot(shoot, qpos, qvel)
        self._opponent_act(qpos, qvel)
        mujoco.mj_step(self.model, self.data, nstep=FRAME_SKIP)
        self._steps += 1
        self._tick()

        old_px = qpos[6]
        ax, ay, px, py = self._qpos[0], self._qpos[1], self._qpos[6], self._qpos[7]
        win = 1 if px > L else (-1 if px < -L else 0)
        self._goal = win
        reward = GOAL_REWARD * win
        if self.reward_mode == "dense":
            reward += PROGRESS_SCALE * (px - old_px) - PROXIMITY_SCALE * math.hypot(px - ax, py - ay)
        terminated = win != 0
        truncated = not terminated and self._steps >= self.max_steps
        return self._observe(), float(reward), terminated, truncated, {"win": win}

    def render(self) -> np.ndarray:
        if self.render_mode != "rgb_array":
            raise DreamscopeError("render() needs AirHockeyEnv(render_mode='rgb_array')")
        if self._background is None:
            self._background = _table_image(_PX_PER_M * _SUPERSAMPLE)
        return _draw_frame(self._background, self._qpos, self._holding, 1.0 - self._steps / self.max_steps)

    # --- Agent ---------------------------------------------------------------------------------
    def _set_agent_controls(self, action) -> float:
        """Validate and clip the action, write the paddle forces, return the shoot value."""
        a = np.asarray(action, dtype=np.float64)  # may be the caller's array: never written to
        if a.shape != (4,):
            raise DreamscopeError(f"action must have shape (4,) (force x, force y, torque, shoot), "
                                  f"got shape {a.shape}: {action!r}")
        if not np.isfinite(a).all():
            raise DreamscopeError(f"action {a.tolist()} has NaN/inf values; accepted: 4 finite numbers, "
                                  f"clipped to [-1, 1]")
        np.clip(a, -1.0, 1.0, out=self._action)
        self._ctrl[0:3] = self._action[0:3]
        return self._action[3]

    def _agent_shoot(self, shoot: float, qpos: list, qvel: list) -> None:
        """Strike or (keep_mode) grab / hold / release, before the physics step."""
        if not self.keep_mode:
            if shoot > 0.5 and self._cooldown == 0:
                self._cooldown = STRIKE_COOLDOWN
                self._strike(qpos[0], qpos[1], qpos[2], qpos[6], qpos[7])
            return
        if self._holding:
            if shoot > 0.5 or self._held >= HOLD_STEPS:
                self._release(kick=shoot > 0.5, qpos=qpos)
            return
        if self._cooldown == 0:
            dist, nx, ny, qx, qy = _paddle_contact(qpos[0], qpos[1], qpos[2], qpos[6], qpos[7])
            if dist < PADDLE_R + PUCK_R + 0.01:
                self._grab(qpos, qvel, nx, ny, qx, qy)

    def _grab(self, qpos: list, qvel: list, nx: float, ny: float, qx: float, qy: float) -> None:
        """Pin the puck just off the paddle's surface, in the paddle's frame."""
        gap = PADDLE_R + PUCK_R + 0.005
        wx, wy = qx + gap * nx - qpos[0], qy + gap * ny - qpos[1]
        c, s = math.cos(qpos[2]), math.sin(qpos[2])
        self._hold_anchor[0:3] = (c * wx + s * wy, -s * wx + c * wy, 0.0)
        self._hold_anchor[3:6] = 0.0
        self._qvel[6:8] = qvel[0:2]  # the puck takes the paddle's velocity
        self.data.eq_active[0] = 1
        self._holding = True

    def _release(self, kick: bool, qpos: list) -> None:
        self.data.eq_active[0] = 0
        self._holding, self._held = False, 0
        self._cooldown = REGRAB_COOLDOWN
        if kick:
            self._strike(qpos[0], qpos[1], qpos[2], qpos[6], qpos[7])

    def _strike(self, x: float, y: float, angle: float, px: float, py: float) -> None:
        """Add STRIKE_SPEED to the puck along the paddle-to-puck normal if it is in reach."""
        dist, nx, ny, _, _ = _paddle_contact(x, y, angle, px, py)
        if dist <= PADDLE_R + PUCK_R + STRIKE_SLACK:
            self._qvel[6] += STRIKE_SPEED * nx
            self._qvel[7] += STRIKE_SPEED * ny

    def _tick(self) -> None:
        if self._holding:
            self._held += 1
        if self._cooldown:
            self._cooldown -= 1
        if self._opp_cooldown:
            self._opp_cooldown -= 1

    # --- Opponent --------------------------------------------------------------------------------
    def _opponent_act(self, qpos: list, qvel: list) -> None:
        if self.opponent == "idle":
            return
        x, y, angle, px, py = qpos[3], qpos[4], qpos[5], qpos[6], qpos[7]
        vx, vy, omega = qvel[3], qvel[4], qvel[5]
        if self.opponent == "attacker" and px > 0.0:
            fx, fy, torque, shoot = _attack(x, y, angle, vx, vy, omega, px, py, -L)
        else:  # guard the goal line, tracking the puck's y, and clear it when it comes close
            gy = min(max(py, -GOAL), GOAL)
            fx, fy, torque = _steer(x, y, angle, vx, vy, omega, L - 0.15, gy, 0.0)
            dist, nx, _, _, _ = _paddle_contact(x, y, angle, px, py)
            shoot = 1.0 if dist < PADDLE_R + PUCK_R + STRIKE_SLACK and nx < -0.5 else -1.0
        self._ctrl[3:6] = fx, fy, torque
        if shoot > 0.5 and self._opp_cooldown == 0:
            self._opp_cooldown = STRIKE_COOLDOWN
            self._strike(x, y, angle, px, py)

    # --- Observation -----------------------------------------------------------------------------
    def _observe(self) -> np.ndarray:
        q, v, o = self._qpos, self._qvel, self._obs
        o[0:2] = q[0:2]
        o[2], o[3] = math.cos(q[2]), math.sin(q[2])
        o[4:7] = v[0:3]
        o[7:9] = q[3:5]
        o[9], o[10] = math.cos(q[5]), math.sin(q[5])
        o[11:14] = v[3:6]
        o[14:16] = q[6:8]
        o[16:18] = v[6:8]
        o[18] = 1.0 - self._steps / self.max_steps
        o[19] = self._cooldown / (REGRAB_COOLDOWN if self.keep_mode else STRIKE_COOLDOWN)
        o[20] = self._held / HOLD_STEPS
        o[21] = self._goal
        return o[: self.observation_space.shape[0]].copy()


# --- Rendering: a top-down frame drawn with PIL, no OpenGL ------------------------------------
_PX_PER_M = 160  # output scale; frames are drawn at 2x and downsampled for anti-aliasing
_SUPERSAMPLE = 2
_MARGIN = WALL + 0.06  # the goal mouths are drawn in this strip beyond the end walls
_BAR = 0.04  # height (m) of the time-left bar under the table
_COLORS = {
    "floor": (38, 42, 50), "table": (226, 236, 246), "wall": (92, 102, 118), "line": (205, 70, 70),
    "crease": (120, 150, 200), "agent": (40, 95, 205), "opponent": (205, 55, 55),
    "puck": (24, 24, 28), "held": (245, 200, 40), "bar": (120, 200, 120),
}


def _to_px(x: float, y: float, scale: float) -> tuple[float, float]:
    return (x + L + _MARGIN) * scale, (W + WALL - y) * scale


def _disc(draw: ImageDraw.ImageDraw, x: float, y: float, radius: float, scale: float, **style) -> None:
    cx, cy = _to_px(x, y, scale)
    rr = radius * scale
    draw.ellipse((cx - rr, cy - rr, cx + rr, cy + rr), **style)


def _table_image(scale: float) -> Image.Image:
    """The static part of a frame: walls, goal mouths, creases, centre line and circle."""
    size = (round(2 * (L + _MARGIN) * scale), round((2 * (W + WALL) + _BAR) * scale))
    img = Image.new("RGB", size, _COLORS["floor"])
    draw = ImageDraw.Draw(img)

    def box(x0: float, y0: float, x1: float, y1: float, color: tuple[int, int, int]) -> None:
        draw.rectangle((*_to_px(min(x0, x1), max(y0, y1), scale), *_to_px(max(x0, x1), min(y0, y1), scale)),
                       fill=color)

    box(-L - WALL, -W - WALL, L + WALL, W + WALL, _COLORS["wall"])
    box(-L, -W, L, W, _COLORS["table"])
    for sign, owner, arc in ((-1, "agent", (-90, 90)), (1, "opponent", (90, 270))):
        box(sign * L, -GOAL, sign * (L + _MARGIN), GOAL, _COLORS[owner])
        cx, cy = _to_px(sign * L, 0.0, scale)
        r = 0.25 * scale  # the goal crease
        draw.arc((cx - r, cy - r, cx + r, cy + r), *arc, fill=_COLORS["crease"], width=max(1, round(0.008 * scale)))
    line = max(1, round(0.012 * scale))
    draw.line((*_to_px(0, -W, scale), *_to_px(0, W, scale)), fill=_COLORS["line"], width=line)
    _disc(draw, 0.0, 0.0, 0.15, scale, outline=_COLORS["line"], width=line)
    return img


def _draw_frame(background: Image.Image, q: np.ndarray, holding: bool, time_left: float) -> np.ndarray:
    """Paddles, puck (rimmed yellow while held) and the time-left bar over the table."""
    scale = _PX_PER_M * _SUPERSAMPLE
    img = background.copy()
    draw = ImageDraw.Draw(img)
    for base, owner in ((0, "agent"), (3, "opponent")):
        x, y, angle = q[base], q[base + 1], q[base + 2]
        ux, uy = -math.sin(angle) * PADDLE_HALF, math.cos(angle) * PADDLE_HALF
        draw.line((*_to_px(x - ux, y - uy, scale), *_to_px(x + ux, y + uy, scale)),
                  fill=_COLORS[owner], width=round(2 * PADDLE_R * scale))
        for end in (-1, 1):
            _disc(draw, x + end * ux, y + end * uy, PADDLE_R, scale, fill=_COLORS[owner])
    rim = _COLORS["held"] if holding else _COLORS["puck"]
    _disc(draw, q[6], q[7], PUCK_R, scale, fill=_COLORS["puck"], outline=rim, width=round(0.01 * scale))
    x0, y0 = _to_px(-L - _MARGIN, -W - WALL, scale)
    draw.rectangle((x0, y0 + 2, x0 + time_left * (img.width - 1), img.height), fill=_COLORS["bar"])
    out = img.resize((img.width // _SUPERSAMPLE, img.height // _SUPERSAMPLE), Image.LANCZOS)
    return np.asarray(out)


def save_episode_gif(env: gym.Env, policy: Callable[[np.ndarray], Any], path: str | Path,
                     seed: int | None = None, fps: int | None = None) -> dict[str, float]:
    """Play one episode with ``policy(obs) -> action`` and write its frames to a GIF.

    ``env`` must render ``rgb_array`` frames (e.g. ``gym.make(..., render_mode="rgb_array")``).
    Returns the episode's ``return``, ``length`` and ``win``.
    """
    obs, _ = env.reset(seed=seed)
    frames = [Image.fromarray(env.render())]
    total, length, done, win = 0.0, 0, False, 0
    while not done:
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        frames.append(Image.fromarray(env.render()))
        total, length, done, win = total + reward, length + 1, terminated or truncated, info["win"]
    fps = fps or env.metadata.get("render_fps", 25)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=round(1000 / fps), loop=0)
    return {"return": total, "length": length, "win": win}
