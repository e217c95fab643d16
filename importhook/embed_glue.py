# SPDX-License-Identifier: MIT
"""Build step: compile glue.py with the target interpreter and write its
marshalled code object as a C array (glue.h), so activation costs one
unmarshal instead of a compile."""
import marshal
import sys

src, out = sys.argv[1], sys.argv[2]
with open(src, encoding='utf-8') as f:
    code = compile(f.read(), '<pycds glue>', 'exec', dont_inherit=True)
data = marshal.dumps(code)
with open(out, 'w') as f:
    f.write('/* generated from glue.py by embed_glue.py: do not edit */\n')
    f.write('static const unsigned char glue_code[%d] = {\n' % len(data))
    for i in range(0, len(data), 16):
        f.write('    ' + ', '.join('0x%02x' % b for b in data[i:i + 16]) +
                ',\n')
    f.write('};\n')
