          05 AUDIT-USER      PIC X(8).
          05 AUDIT-STAMP     PIC 9(14).
