"""What a Python function can ask of FaaSCell's guest agent.

    import faascell

    rng = np.random.default_rng()

    def _fresh(info):          # info: {"connectionsClosed": n}
        global rng
        rng = np.random.default_rng()

    faascell.on_restore(_fresh)

Callbacks run after every snapshot restore, before the restored VM's first run,
after the agent reseeded `random`, numpy's and PyTorch's global generators and
the kernel CRNG and closed the connections opened before the snapshot (the Node
agent's counterpart is process.on('faascell:restored')). A callback that raises
is reported in the next run's logs; the others still run."""

_callbacks = []


def on_restore(callback):
    """Call callback(info) after each restore of this VM from a snapshot; returns callback (usable as a decorator)."""
    if not callable(callback):
        raise TypeError("on_restore needs a callable")
    _callbacks.append(callback)
    return callback


def _restored(info, report):
    for cb in list(_callbacks):
        try:
            cb(info)
        except Exception as err:  # noqa: BLE001 - user code: reported, never fatal
            report(f"[faascell] on_restore callback {getattr(cb, '__name__', cb)!s} raised {type(err).__name__}: {err}")
