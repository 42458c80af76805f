      *> ---------------------------------------------------------------
      *> NULLSVC - the null service: a few fields in, the same out, and
      *> no file I/O, so a call measures the runtime around the program
      *> (transport, framing, JSON, dispatch) rather than the program.
      *>
      *>   LK-IN-NAME    PIC X(20)  in   echoed to LK-OUT-NAME
      *>   LK-IN-AMOUNT  PIC 9(7)   in   echoed to LK-OUT-AMOUNT
      *>   LK-OUT-NAME   PIC X(20)  out
      *>   LK-OUT-AMOUNT PIC 9(7)   out
      *>
      *> RETURN-CODE is always 0.
      *> ---------------------------------------------------------------
       IDENTIFICATION DIVISION.
       PROGRAM-ID. NULLSVC.

       DATA DIVISION.
       LINKAGE SECTION.
       01  LK-IN-NAME              PIC X(20).
       01  LK-IN-AMOUNT            PIC 9(7).
       01  LK-OUT-NAME             PIC X(20).
       01  LK-OUT-AMOUNT           PIC 9(7).

       PROCEDURE DIVISION USING LK-IN-NAME LK-IN-AMOUNT
                                LK-OUT-NAME LK-OUT-AMOUNT.
       MAIN-PARA.
           MOVE LK-IN-NAME TO LK-OUT-NAME
           MOVE LK-IN-AMOUNT TO LK-OUT-AMOUNT
           MOVE 0 TO RETURN-CODE
           GOBACK.
