# SPDX-License-Identifier: MIT
"""sympy from Debian's python3-sympy: trace, dump and share a symbolic
workload (workloads/sympy_work.py); output as stock, modules served."""
import cdstest

if __name__ == '__main__':
    cdstest.workload_case(
        'sympy', 'sympy_work.py', need=['sympy'],
        must_serve=['sympy', 'sympy.core', 'sympy.core.expr',
                    'sympy.integrals.integrals', 'sympy.polys.polytools',
                    'sympy.matrices', 'mpmath']).finish()
