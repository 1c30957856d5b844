"""Shared helpers of the bad-input probes (issue 17): bad variants of a good array, and checks
that a call either fails with a clear ``ValueError`` / ``TypeError`` naming the argument or
returns a finite result, without modifying its inputs.

A probe module takes a *good* call of a public function (keyword arguments that work), then
replaces one array argument at a time by each variant of :func:`bad_arrays` and checks the
outcome with :func:`check_call`.
"""

from __future__ import annotations

import copy
import dataclasses
import numbers
import re

import numpy as np
import pytest

ERRORS = (ValueError, TypeError)

# variants that must always be rejected, and variants a function may accept (then its result
# must be finite)
MUST_RAISE = ("nan", "inf", "complex", "object", "string", "none", "ndim_up", "ndim_down",
              "empty")
MAY_PASS = ("int", "float16", "list")
ALL_VARIANTS = MUST_RAISE + MAY_PASS


def bad_arrays(a, *, skip=()):
    """Variants of a good float NumPy array ``a``: ``[(label, bad_value, must_raise), ...]``.

    Labels: ``nan`` and ``inf`` (one entry replaced), ``complex``, ``object`` (same values in an
    object array), ``string``, ``none``, ``ndim_up`` (a leading axis of 1 added), ``ndim_down``
    (the first entry along axis 0), ``empty`` (zero entries along axis 0); and, allowed to pass
    with a finite result, ``int`` (rounded integers), ``float16`` and ``list`` (nested lists).
    Labels in ``skip`` are left out (for example ``ndim_up`` for a function that accepts a batch).
    """
    a = np.asarray(a)
    out = []

    def add(label, value, must):
        if label not in skip:
            out.append((label, value, must))

    if a.size:
        for label, v in (("nan", np.nan), ("inf", np.inf)):
            b = np.array(a, dtype=float, copy=True)
            b.flat[0] = v
            add(label, b, True)
    add("complex", a.astype(complex) + 1j, True)
    add("object", a.astype(object), True)
    add("string", np.full(a.shape, "a"), True)
    add("none", None, True)
    add("ndim_up", a[None], True)
    if a.ndim >= 1 and a.shape[0]:
        add("ndim_down", a[0], True)
    if a.ndim >= 1:
        add("empty", a[:0], True)
    add("int", np.round(a).astype(np.int64), False)
    with np.errstate(over="ignore"):  # large values become inf in float16: must raise then
        add("float16", a.astype(np.float16), False)
    add("list", a.tolist(), False)
    return out


def snapshot(obj):
    """Deep copy of the arrays (and containers of arrays) in ``obj``, to compare after a call."""
    try:
        return copy.deepcopy(obj)
    except Exception:  # objects that cannot be copied (modules, functions) are compared by id
        return obj


def assert_unchanged(before, after, where="input"):
    """Assert that ``after`` equals the snapshot ``before`` (arrays exactly, NaN == NaN)."""
    if isinstance(before, np.ndarray):
        assert isinstance(after, np.ndarray), f"{where} changed type"
        assert before.shape == after.shape and before.dtype == after.dtype, f"{where} changed"
        if before.dtype == object or before.dtype.kind in "US":
            assert before.tolist() == after.tolist(), f"{where} modified in place"
        else:
            np.testing.assert_array_equal(after, before, err_msg=f"{where} modified in place")
    elif hasattr(before, "detach") and hasattr(before, "shape"):  # torch tensor
        assert bool((before == after).all() | (before.isnan() & after.isnan()).all()), (
            f"{where} modified in place")
    elif isinstance(before, dict):
        assert before.keys() == after.keys(), f"{where} changed keys"
        for k in before:
            assert_unchanged(before[k], after[k], f"{where}[{k!r}]")
    elif isinstance(before, (list, tuple)):
        assert len(before) == len(after), f"{where} changed length"
        for i, (b, c) in enumerate(zip(before, after, strict=True)):
            assert_unchanged(b, c, f"{where}[{i}]")


def assert_finite_result(out, where="result"):
    """Assert that every floating number or array in ``out`` (recursively) is finite."""
    if out is None or isinstance(out, (str, bytes, bool)):
        return
    if isinstance(out, numbers.Number):
        if isinstance(out, complex):
            raise AssertionError(f"{where} is complex: {out}")
        assert np.isfinite(float(out)), f"{where} is not finite: {out}"
    elif isinstance(out, np.ndarray):
        if out.dtype.kind in "fc":
            assert np.all(np.isfinite(out)), f"{where} holds NaN or inf"
    elif hasattr(out, "detach") and hasattr(out, "shape"):
        if out.is_floating_point():
            assert bool(out.isfinite().all()), f"{where} holds NaN or inf"
    elif hasattr(out, "__array_namespace__"):
        assert_finite_result(np.from_dlpack(out), where)
    elif isinstance(out, dict):
        for k, v in out.items():
            assert_finite_result(v, f"{where}[{k!r}]")
    elif isinstance(out, (list, tuple)):
        for i, v in enumerate(out):
            assert_finite_result(v, f"{where}[{i}]")
    elif dataclasses.is_dataclass(out):
        for f in dataclasses.fields(out):
            assert_finite_result(getattr(out, f.name), f"{where}.{f.name}")


def names(message, name):
    """Whether ``message`` mentions ``name`` as a word (``cov`` is not named by ``cov0``)."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", message) is not None


def expect_error(call, name, errors=ERRORS):
    """Run ``call()`` and assert it raises one of ``errors`` whose message contains ``name``."""
    with pytest.raises(errors) as info:
        call()
    assert names(str(info.value), name), (
        f"the error does not name {name!r}: {type(info.value).__name__}: {info.value}")
    return info.value


def check_call(call, name, must_raise, *, inputs=(), result_check=assert_finite_result):
    """Probe one call: a clear error naming ``name``, or (unless ``must_raise``) a finite result.

    Parameters
    ----------
    call : callable
        No-argument function making the call.
    name : str
        Argument name the error message must contain.
    must_raise : bool
        Whether accepting the input is a bug.
    inputs : sequence
        Objects passed to the call, checked to be unchanged afterwards.
    result_check : callable
        Applied to the result when the call succeeds (default: everything finite).
    """
    before = [snapshot(x) for x in inputs]
    try:
        out = call()
    except ERRORS as exc:
        assert names(str(exc), name), (
            f"the error does not name {name!r}: {type(exc).__name__}: {exc}")
    except Exception as exc:  # an obscure error (AttributeError, IndexError, LinAlgError...)
        raise AssertionError(f"obscure error for bad {name!r}: {type(exc).__name__}: {exc}") \
            from exc
    else:
        assert not must_raise, f"bad {name} accepted silently (returned {type(out).__name__})"
        result_check(out)
    for i, (b, x) in enumerate(zip(before, inputs, strict=True)):
        assert_unchanged(b, x, f"input {i}")


class Probe:
    """A good call of ``fn`` with keyword arguments ``good``, to be spoiled one array at a time.

    Parameters
    ----------
    fn : callable
        Called as ``fn(**kwargs)``.
    skip : dict, optional
        ``{arg: labels}``: variants of :func:`bad_arrays` not to try for ``arg`` (``'*'``: do not
        probe ``arg`` at all).
    name : dict, optional
        ``{arg: text}``: what the error message must contain for ``arg`` (default: ``arg``).
    allow : dict, optional
        ``{arg: labels}``: variants that may pass for ``arg`` (with a finite result) although
        they usually must raise, e.g. object arrays of numbers, which scikit-learn estimators
        convert to float.
    xfail : dict, optional
        ``{arg: {label: reason}}``: known failures, reported and left to the owner of the code
        (strict: :meth:`run_variants` fails once such a case is fixed, to remove the entry).
    **good
        Keyword arguments of a call that works; NumPy arrays among them are probed.
    """

    def __init__(self, fn, /, *, skip=None, name=None, allow=None, xfail=None, **good):
        self.fn, self.good = fn, good
        self.skip = skip or {}
        self.name = name or {}
        self.allow = allow or {}
        self.xfail = xfail or {}

    def arrays(self):
        return {k: v for k, v in self.good.items()
                if isinstance(v, np.ndarray) and self.skip.get(k) != "*"}

    def run(self, arg, bad, must_raise):
        kw = {**self.good, arg: bad}
        check_call(lambda: self.fn(**kw), self.name.get(arg, arg), must_raise,
                   inputs=list(kw.values()))

    def run_variants(self, arg, variants=ALL_VARIANTS):
        """Every bad variant of ``arg`` (see :func:`bad_arrays`), failing once with the list of
        the variants that misbehave; a variant marked in ``xfail`` must still fail."""
        problems = []
        for label, bad, must in bad_arrays(self.good[arg], skip=self.skip.get(arg, ())):
            if label not in variants:
                continue
            must = must and label not in self.allow.get(arg, ())
            reason = self.xfail.get(arg, {}).get(label)
            try:
                self.run(arg, bad, must)
            except AssertionError as exc:
                if not reason:
                    problems.append(f"{label}: {exc}".splitlines()[0])
            else:
                if reason:
                    problems.append(f"{label}: known failure fixed, remove the xfail ({reason})")
        assert not problems, f"{arg}:\n  " + "\n  ".join(problems)

    def run_good(self):
        """The good call itself: a finite result and unchanged inputs."""
        kw = dict(self.good)
        check_call(lambda: self.fn(**kw), "", False, inputs=list(kw.values()))


def array_cases(spec):
    """Expand ``{case_id: Probe}`` into pytest params ``(probe, arg)``, one per array argument;
    :meth:`Probe.run_variants` then tries every bad variant of that argument."""
    return [pytest.param(probe, arg, id=f"{case_id}-{arg}")
            for case_id, probe in spec.items() for arg in probe.arrays()]


def good_cases(spec):
    """``{case_id: Probe}`` as pytest params of the good calls."""
    return [pytest.param(probe, id=case_id) for case_id, probe in spec.items()]


def spec_tests(spec):
    """The two tests a probe module runs on its ``{case_id: Probe}`` spec.

    Returns ``(test_good_call, test_bad_array)``: every good call gives a finite result with
    its inputs unchanged, and every array argument is tried with each variant of
    :func:`bad_arrays`. Assign them to module-level names starting with ``test_``.
    """

    @pytest.mark.parametrize("probe", good_cases(spec))
    def test_good_call(probe):
        probe.run_good()

    @pytest.mark.parametrize("probe, arg", array_cases(spec))
    def test_bad_array(probe, arg):
        probe.run_variants(arg)

    return test_good_call, test_bad_array
