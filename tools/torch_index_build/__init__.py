"""Helpers of the torch index builder (`tools.build_torch_index`): build-time only, never in the runtime wheel.

* :mod:`.binaries`: the string tables of a wheel's extension binaries (Python binding names,
  ``aten::`` schemas), read by plain byte scanning;
* :mod:`.references`: the private torch names a release's own Python code uses, and the
  ``sys.modules`` alias shims it installs.
"""
