# SPDX-License-Identifier: MIT
"""The standard-library workload with PYCDSRELOCATE=1: the archive is
mapped away from its preferred base and every pointer relocated; output
as stock, _cds.stats()['relocated'] is True."""
import test_stdlib

if __name__ == '__main__':
    test_stdlib.run('relocate', relocate=True)
