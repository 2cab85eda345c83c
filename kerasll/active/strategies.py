"""Query strategies: a score plus a batch rule, configured by a spec string.

A strategy only scores and selects; it never trains. It reads the trained
model through a model view (`kerasll.active.view`): uncertainty scores,
features or predicted losses of pool items, by index. Views exist for every
task (`kerasll.tasks`), so the same strategies pick classification images
and detection scenes.

Most strategies are a score (`kerasll.active.scores`) combined with a batch
rule (`kerasll.active.batch_rules`), named `SCORE+RULE`:
`predicted_loss+stochastic`, `entropy+balanced`, `hybrid+top`. The classic
names are aliases: `learning_loss` is `predicted_loss+top` trained jointly
(the paper), `learning_loss_safe` is `predicted_loss+safe`, `entropy` is
`entropy+top`. `random`, its A/A control `random_control`, `coreset` and
`badge` are strategies of their own.

A spec sets parameters after colons: `learning_loss_safe:audit_share=0.2`,
`predicted_loss+stochastic:temperature=2:mode=softmax`. A strategy's `name`
is its canonical spec (the base name, then the parameters that differ from
their defaults, sorted), which keys its runs in results; `get_config()`
holds every parameter and is recorded with the results.

How a strategy's model is trained is part of the strategy (`head_training`):
"plain" (no loss head), "joint" (the paper: the head's gradient reaches the
target network until the detach epoch) or "decoupled" (the head learns on
features whose gradient is stopped from the first step, so the target
network trains exactly as without a head). Strategies that read the loss
head train it decoupled unless a spec asks otherwise (`head_training=joint`);
the alias `learning_loss` is the paper's joint training.

Every `select` call returns a `Selection` of `budget` (K) pool indices from
`candidates`, best first, and the score each pick had. Its randomness comes
from a `Draw` (`kerasll.active.batch`): the engine gives every strategy of a
stream the same draw, so their random choices agree item for item wherever
their choices agree.
"""

import abc
import inspect
from numbers import Integral

import numpy as np
from kerasll_serving.validation import Interval, StrOptions, validate_arguments

from kerasll.active.badge import gradient_factors, kmeans_plus_plus
from kerasll.active.batch import Audit, Draw, Selection, as_draw
from kerasll.active.batch_rules import CHUNK_SIZE, RULES, predicted_classes
from kerasll.active.errors import ProtocolError, UnknownStrategyError
from kerasll.active.kcenter import greedy_k_center
from kerasll.active.scores import SCORES

PLAIN, JOINT, DECOUPLED = "plain", "joint", "decoupled"
HEAD_TRAININGS = (PLAIN, JOINT, DECOUPLED)
SHARED_STREAM, CONTROL_STREAM = "shared", "control"
_BUDGET = {"budget": [Interval(Integral, 1, None, closed="left")]}

__all__ = [
    "Audit", "Draw", "Selection", "Strategy", "STRATEGIES", "get_strategy",
    "parse_strategies", "strategy_spec",
]


def _check_request(candidates, budget):
    candidates = np.asarray(candidates, dtype=np.int64).reshape(-1)
    budget = validate_arguments(_BUDGET, {"budget": budget}, ProtocolError)["budget"]
    if budget > len(candidates):
        raise ProtocolError(
            f"Expected budget to be at most the {len(candidates)} candidates. "
            f"Received: budget={budget}"
        )
    return candidates, budget


class Strategy(abc.ABC):
    """Base class: picks `budget` pool items among `candidates`.

    Attributes:
        base_name: the registry name the strategy was built from.
        head_training: how its model trains: `PLAIN` (no loss head), `JOINT`
            or `DECOUPLED`.
        stream: the name of the random stream its `Draw` comes from; every
            strategy shares `SHARED_STREAM` but the A/A control.
        defaults: the configuration of the bare registry name; `name` lists
            the parameters that differ from it.
    """

    base_name = None
    head_training = PLAIN
    stream = SHARED_STREAM
    defaults = {}

    @property
    def name(self):
        """The canonical spec: base name, then the non-default parameters."""
        changed = {
            key: value
            for key, value in self.get_config().items()
            if self.defaults.get(key, object()) != value
        }
        return strategy_spec(self.base_name, changed)

    @property
    def uses_loss_head(self):
        """Whether the model must be a `LossLearner`."""
        return self.head_training != PLAIN

    def score(self, view, indices):
        """The strategy's score of pool items (audits), or None without one."""
        return None

    def select(self, view, candidates, budget, labeled, draw, history=()):
        """Chooses the items to label next.

        Args:
            view: a model view of the model trained this cycle.
            candidates: pool indices that may be chosen (the subset of M).
            budget: number of items to choose (K).
            labeled: pool indices labeled so far.
            draw: the cycle's `Draw` aligned with `candidates`, or a
                `numpy.random.Generator` to draw one from.
            history: `Audit`s of this run's earlier selections, oldest first
                (None for a selection that audited nothing).

        Returns:
            A `Selection` of `budget` distinct candidates.

        Raises:
            ProtocolError: a budget that is not an integer in
                [1, len(candidates)], or a view without what the strategy
                reads.
        """
        candidates, budget = _check_request(candidates, budget)
        return self._select(
            view, candidates, budget, labeled, as_draw(draw, len(candidates)), history
        )

    @abc.abstractmethod
    def _select(self, view, candidates, budget, labeled, draw, history):
        """`select` on checked arguments and a `Draw`."""

    def get_config(self):
        """Every parameter, the spec's and the defaults (recorded in results)."""
        return {}

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r})"


class RandomStrategy(Strategy):
    """Uniformly random picks: the prefix of the draw's random order.

    Args:
        stream: "shared" (`random`) or "control" (`random_control`: the
            same rule on an independent stream, the A/A test whose
            difference to `random` is the noise floor of a comparison).

    Raises:
        ProtocolError: an argument outside `parameter_constraints`.
    """

    base_name = "random"
    parameter_constraints = {"stream": [StrOptions((SHARED_STREAM, CONTROL_STREAM))]}

    def __init__(self, stream=SHARED_STREAM):
        self.stream = validate_arguments(
            self.parameter_constraints, {"stream": stream}, ProtocolError
        )["stream"]
        if stream != SHARED_STREAM:
            self.base_name = "random_control"

    def _select(self, view, candidates, budget, labeled, draw, history):
        return Selection(candidates[draw.order()[:budget]])


class CoreSetStrategy(Strategy):
    """Greedy k-center on the view's features (Sener & Savarese, 2018).

    The labeled items are the initial centers; each pick is the candidate
    farthest from every center so far. Distances are computed in blocks of
    `chunk_size` centers, so memory stays bounded for 50,000 x 10,000.

    Args:
        chunk_size: centers per distance block.

    Raises:
        ProtocolError: an argument outside `parameter_constraints`.
    """

    base_name = "coreset"
    parameter_constraints = {"chunk_size": CHUNK_SIZE}

    def __init__(self, chunk_size=1024):
        self.chunk_size = validate_arguments(
            self.parameter_constraints, {"chunk_size": chunk_size}, ProtocolError
        )["chunk_size"]

    def get_config(self):
        return {"chunk_size": self.chunk_size}

    def _select(self, view, candidates, budget, labeled, draw, history):
        labeled = np.asarray(labeled, dtype=np.int64)
        centers = view.features(labeled) if len(labeled) else None
        chosen, distances = greedy_k_center(
            view.features(candidates), budget, centers, self.chunk_size
        )
        return Selection(candidates[chosen], distances)


class BadgeStrategy(Strategy):
    """BADGE (Ash et al., 2020): k-means++ seeding on gradient embeddings.

    Uncertain items have long last-layer gradients and k-means++ spreads the
    batch over their directions (`kerasll.active.badge`). Needs a view with
    class probabilities and penultimate features per item (classification).
    """

    base_name = "badge"

    def _select(self, view, candidates, budget, labeled, draw, history):
        predicted_classes(view, candidates[:1])  # Checks the view.
        a, h = gradient_factors(view.probabilities(candidates), view.features(candidates))
        chosen = kmeans_plus_plus(a, h, budget, draw.rng)
        norms = np.sqrt((a[chosen] ** 2).sum(axis=1) * (h[chosen] ** 2).sum(axis=1))
        return Selection(candidates[chosen], norms)


class ComposedStrategy(Strategy):
    """A score and a batch rule (`SCORE+RULE`), with how the model trains.

    Args:
        score: a `kerasll.active.scores.Score`.
        rule: a `kerasll.active.batch_rules.BatchRule`.
        head_training: "plain", "joint" or "decoupled"; None: "decoupled"
            when the score reads the loss head, else "plain".
        base_name: the registry name (an alias such as "learning_loss", or
            "SCORE+RULE").

    Raises:
        ProtocolError: a head training outside `parameter_constraints`, or
            one that cannot feed the score.
    """

    parameter_constraints = {"head_training": [StrOptions(HEAD_TRAININGS), None]}

    def __init__(self, score, rule, head_training=None, base_name=None):
        self.score_function, self.rule = score, rule
        head_training = validate_arguments(
            self.parameter_constraints, {"head_training": head_training}, ProtocolError
        )["head_training"]
        if head_training is None:
            head_training = DECOUPLED if score.needs_head else PLAIN
        if score.needs_head and head_training == PLAIN:
            raise ProtocolError(
                f"Expected head_training 'joint' or 'decoupled' for the {score.name} "
                "score, which reads the loss head. Received: head_training='plain'"
            )
        self.head_training = head_training
        self.base_name = base_name or f"{score.name}+{rule.name}"

    def score(self, view, indices):
        return self.score_function(view, np.asarray(indices, dtype=np.int64))

    def _select(self, view, candidates, budget, labeled, draw, history):
        return self.rule.select(
            self.score_function, view, candidates, budget, labeled, draw, history
        )

    def get_config(self):
        return {
            "head_training": self.head_training,
            **self.score_function.get_config(),
            **self.rule.get_config(),
        }


def strategy_spec(base_name, parameters):
    """A spec string: `base_name:key=value:...`, keys sorted.

    Args:
        base_name: a registry name.
        parameters: dict of parameter values.

    Returns:
        The canonical spec.
    """
    return ":".join(
        [base_name] + [f"{key}={parameters[key]}" for key in sorted(parameters)]
    )


# Aliases of composed strategies: (score, rule, implied parameters).
_ALIASES = {
    "learning_loss": ("predicted_loss", "top", {"head_training": JOINT}),
    "learning_loss_decoupled": ("predicted_loss", "top", {"head_training": DECOUPLED}),
    "learning_loss_diverse": ("predicted_loss", "diverse", {"head_training": JOINT}),
    "learning_loss_safe": ("predicted_loss", "safe", {}),
    "learning_loss_stochastic": ("predicted_loss", "stochastic", {}),
    "learning_loss_balanced": ("predicted_loss", "balanced", {}),
    "entropy": ("entropy", "top", {}),
    "margin": ("margin", "top", {}),
    "least_confidence": ("least_confidence", "top", {}),
}
_OWN = {
    "random": (RandomStrategy, {}),
    "random_control": (RandomStrategy, {"stream": CONTROL_STREAM}),
    "coreset": (CoreSetStrategy, {}),
    "badge": (BadgeStrategy, {}),
}

STRATEGIES = tuple(
    sorted(
        list(_ALIASES)
        + list(_OWN)
        + [f"{score}+{rule}" for score in SCORES for rule in RULES]
    )
)
"""Every registry name; `SCORE+RULE` names are listed for every pair."""

NAMED = tuple(sorted(list(_ALIASES) + list(_OWN)))
"""The registry names that are not `SCORE+RULE` pairs."""


def _parameters(cls, fixed):
    """Constructor parameters of a class that a spec may set, with defaults."""
    signature = inspect.signature(cls.__init__)
    return {
        name: parameter.default
        for name, parameter in signature.parameters.items()
        if name != "self"
        and name not in fixed
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    }


def _parse_value(text):
    """A spec value: int, float, true/false, none, else the string."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            pass
    return text


def _split_spec(spec):
    base, *assignments = [part.strip() for part in spec.split(":")]
    parameters = {}
    for assignment in assignments:
        key, equals, value = assignment.partition("=")
        if not equals or not key.strip() or not value.strip():
            raise UnknownStrategyError(
                f"Expected parameters as key=value in {spec!r}. Received: {assignment!r}"
            )
        parameters[key.strip()] = _parse_value(value.strip())
    return base, parameters


def _build(base, parameters, spec):
    """The strategy of a registry name with parameters; its `defaults` are
    the configuration the bare name gives, so its `name` shows the rest."""
    if base in _OWN:
        cls, fixed = _OWN[base]
        _check_keys(spec, parameters, _parameters(cls, fixed))
        strategy = cls(**fixed, **parameters)
        strategy.defaults = cls(**fixed).get_config()
        return strategy
    if base in _ALIASES:
        score_name, rule_name, implied = _ALIASES[base]
    elif base.partition("+")[0] in SCORES and base.partition("+")[2] in RULES:
        score_name, _, rule_name = base.partition("+")
        implied = {}
    else:
        raise UnknownStrategyError(
            f"Expected a strategy from {list(NAMED)} or SCORE+RULE with a score "
            f"from {sorted(SCORES)} and a rule from {sorted(RULES)}. "
            f"Received: {base!r}"
        )
    (score_cls, score_fixed), rule_cls = SCORES[score_name], RULES[rule_name]
    score_keys = _parameters(score_cls, score_fixed)
    rule_keys = _parameters(rule_cls, {})
    _check_keys(spec, parameters, {"head_training", *score_keys, *rule_keys})

    def compose(values):
        score = score_cls(
            **score_fixed, **{k: v for k, v in values.items() if k in score_keys}
        )
        rule = rule_cls(**{k: v for k, v in values.items() if k in rule_keys})
        return ComposedStrategy(score, rule, values.get("head_training"), base)

    strategy = compose({**implied, **parameters})
    strategy.defaults = compose(implied).get_config()
    return strategy


def _check_keys(spec, parameters, allowed):
    unknown = sorted(set(parameters) - set(allowed))
    if unknown:
        raise UnknownStrategyError(
            f"Expected parameters of {spec.split(':')[0]!r} from {sorted(allowed)}. "
            f"Received: {unknown} in {spec!r}"
        )


def get_strategy(spec, **kwargs):
    """A configured strategy from a spec, or a strategy instance as is.

    Args:
        spec: a `Strategy`, or a registry name with optional parameters:
            "learning_loss_safe", "learning_loss_safe:audit_share=0.2",
            "hybrid+stochastic:measure=margin:temperature=2".
        **kwargs: more parameters (override the spec's).

    Returns:
        A `Strategy`.

    Raises:
        UnknownStrategyError: an unknown name or parameter (the message
            lists the strategy's parameters), or a malformed spec.
        ProtocolError: a parameter value the strategy refuses.
    """
    if isinstance(spec, Strategy):
        if kwargs:
            raise UnknownStrategyError(
                f"Expected no parameters with a strategy instance. Received {sorted(kwargs)}"
            )
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise UnknownStrategyError(
            f"Expected a strategy name or spec. Received: {spec!r}"
        )
    base, parameters = _split_spec(spec.strip())
    parameters.update(kwargs)
    # Unknown parameter names are refused before any constructor runs and
    # values by the constructors' validator, so a TypeError here is a bug.
    return _build(base, parameters, spec.strip())


def _recorded_name(spec):
    """The canonical spec of a spec or instance, which must rebuild it.

    Results record a strategy by its name and a resume rebuilds it from the
    registry, so an instance is refused unless its name gives the same class
    and configuration.

    Args:
        spec: a spec string or a `Strategy`.

    Returns:
        The canonical spec (`Strategy.name`).

    Raises:
        UnknownStrategyError: an unknown spec, or an instance its name does
            not rebuild (its own class, or another configuration).
        ProtocolError: a parameter value a strategy refuses.
    """
    strategy = get_strategy(spec)
    if not isinstance(spec, Strategy):
        return strategy.name
    rebuilt = None
    if isinstance(strategy.base_name, str):
        try:
            rebuilt = get_strategy(strategy.name)
        except (UnknownStrategyError, ProtocolError):
            rebuilt = None
    if type(rebuilt) is not type(strategy) or (
        rebuilt.get_config() != strategy.get_config()
    ):
        raise UnknownStrategyError(
            "Expected a strategy instance that its name rebuilds from the registry "
            "(results record the name; a resume rebuilds from it). Received: "
            f"{type(strategy).__name__} with base_name={strategy.base_name!r}; pass "
            f"a spec of {list(NAMED)} or SCORE+RULE instead"
        )
    return strategy.name


def parse_strategies(specs):
    """Validates strategies: a comma-separated string, or a list of specs or
    instances.

    Args:
        specs: e.g. "learning_loss,random",
            ["learning_loss_safe:audit_share=0.2", RandomStrategy()].

    Returns:
        List of distinct canonical specs (`Strategy.name`), in order.

    Raises:
        UnknownStrategyError: an unknown name or parameter, none at all, or
            an instance that is not a registered strategy (`_recorded_name`).
        ProtocolError: a parameter value a strategy refuses.
    """
    if isinstance(specs, str):
        specs = [spec.strip() for spec in specs.split(",") if spec.strip()]
    names = list(dict.fromkeys(_recorded_name(spec) for spec in specs))
    if not names:
        raise UnknownStrategyError(
            f"Expected at least one strategy from {list(NAMED)}. Received none"
        )
    return names
