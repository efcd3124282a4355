"""Arrays kept in step on both sides: the arrays one side shares with the other, with their content at the
last sync."""

import sys
import weakref

from .wire import SandboxError


def _array(entry):
    """The array of an entry, or None if it was this side's and died."""
    held = entry[0]
    return held() if type(held) is weakref.ref else held


class Mirrors:
    """The arrays this side shares with the other, by key, with their content at the last sync.

    This side's own arrays (keys starting with its prefix) are held weakly: when one dies here, the other side
    is told (dropped) and lets go of its copy. The other side's arrays are held strongly until it says so, so a
    key the other side sends always names an array this side still has; but when nothing here but this table
    holds one any more, this side lets go of it as it next speaks and tells the other side (released), which
    then stops sending its changes (a model's parameters, updated at every training step, stop crossing once
    the tests no longer hold them). Only one side speaks at a time, so the other side learns of a release
    before it says anything more: it never names a released key again (it shares the array anew if need be).
    """

    def __init__(self, prefix):
        self.prefix, self.count = prefix, 0
        self.entries = {}  # key -> [the array (the other side's) or a weak reference (own), its bytes at the last sync]
        self.key_of = {}  # id(array) -> key
        self.dropped = []  # own keys whose arrays died since the last message
        self.released = []  # the other side's keys let go of since the last message

    def _register(self, key, array, own):
        ident = id(array)
        if own:
            def forget(_, key=key, ident=ident):
                if self.entries.pop(key, None) is not None:
                    self.dropped.append(key)
                if self.key_of.get(ident) == key:
                    del self.key_of[ident]
            held = weakref.ref(array, forget)
        else:
            held = array
        self.entries[key] = [held, array.tobytes()]
        self.key_of[ident] = key

    def known(self, array):
        key = self.key_of.get(id(array))
        entry = self.entries.get(key) if key else None
        return key if entry is not None and _array(entry) is array else None

    def share(self, array):
        """(key, is_new) for an array of this side about to cross."""
        key = self.known(array)
        if key is not None:
            return key, False
        self.count += 1
        key = f"{self.prefix}{self.count}"
        self._register(key, array, own=True)
        return key, True

    def adopt(self, key, array):
        """Hold the other side's array under its key (a key of ours coming back is a protocol error)."""
        if key.startswith(self.prefix) or not key[:1].isalpha():
            raise SandboxError(f"the other side sent new data under the key {key!r}")
        self._register(key, array, own=False)

    def local(self, key):
        entry = self.entries.get(key)
        return _array(entry) if entry is not None else None

    def _untrack(self, key):
        """Stop sharing the array under key (if any); the array itself lives on, unshared."""
        entry = self.entries.pop(key, None)
        if entry is not None:
            array = _array(entry)
            if array is not None and self.key_of.get(id(array)) == key:
                del self.key_of[id(array)]

    def release(self, keys):
        """The other side's arrays it no longer shares (dropped): forget them (this side's copies live on)."""
        for key in keys:
            if isinstance(key, str) and not key.startswith(self.prefix):
                self._untrack(key)

    def take_dropped(self):
        dropped, self.dropped = self.dropped, []
        return dropped

    def release_unused(self):
        """Let go of the other side's arrays that nothing but this table holds; their keys, to tell it."""
        for key, entry in list(self.entries.items()):
            if key.startswith(self.prefix):
                continue
            array = _array(entry)
            unused = sys.getrefcount(array) <= 3  # the entry, `array` here, and getrefcount's argument
            del array
            if unused:
                self._untrack(key)
                self.released.append(key)

    def take_released(self):
        released, self.released = self.released, []
        return released

    def forget_own(self, keys):
        """This side's arrays the other side let go of: stop tracking them (they live on here, unshared)."""
        for key in keys:
            if isinstance(key, str) and key.startswith(self.prefix):
                self._untrack(key)

    def changed(self):
        """[(key, array)] of the shared arrays written since the last sync; marks them synced."""
        result = []
        for key, entry in list(self.entries.items()):
            array = _array(entry)
            if array is None:
                continue
            data = array.tobytes()
            if data != entry[1]:
                entry[1] = data
                result.append((key, array))
        return result

    def apply(self, key, value):
        """Write the other side's new content of a shared array into this side's array, in place."""
        array = self.local(key)
        if array is None:
            return
        if array.shape != value.shape or array.dtype != value.dtype:
            raise SandboxError(f"a shared array changed from {array.dtype}{array.shape} to {value.dtype}"
                               f"{value.shape} in place, which cannot happen")
        if array.flags.writeable:
            array[...] = value
        self.entries[key][1] = array.tobytes()

    def clear(self):
        self.entries.clear()
        self.key_of.clear()
        self.dropped.clear()
        self.released.clear()
