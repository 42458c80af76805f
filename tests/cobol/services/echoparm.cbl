      * ECHOPARM: a test service with inputs of several kinds.
      * Greets LK-IN-NAME and adds LK-IN-AMOUNT and the three items.
       IDENTIFICATION DIVISION.
       PROGRAM-ID. ECHOPARM.
       DATA DIVISION.
       LINKAGE SECTION.
       01 LK-IN-NAME          PIC X(10).
       01 LK-IN-AMOUNT        PIC S9(5)V99.
       01 LK-IN-ITEMS.
          05 LK-ITEM          PIC 9(3) OCCURS 3 TIMES.
       01 LK-OUT-GREETING     PIC X(30).
       01 LK-OUT-TOTAL        PIC S9(7)V99 COMP-3.
       PROCEDURE DIVISION USING LK-IN-NAME LK-IN-AMOUNT LK-IN-ITEMS
                                LK-OUT-GREETING LK-OUT-TOTAL.
           MOVE SPACES TO LK-OUT-GREETING
           STRING "HELLO " DELIMITED BY SIZE
                  LK-IN-NAME DELIMITED BY SPACE
                  INTO LK-OUT-GREETING
           COMPUTE LK-OUT-TOTAL = LK-IN-AMOUNT + LK-ITEM(1)
                                + LK-ITEM(2) + LK-ITEM(3)
           GOBACK.
